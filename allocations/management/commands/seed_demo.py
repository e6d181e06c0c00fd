from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from allocations import seed


class Command(BaseCommand):
    help = (
        "Load the reference systems and threshold policy, one open call with its access modes, "
        "demo users and demo applications. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--allow-demo-users",
            action="store_true",
            help="Create the demo users (known password) even though DEBUG is off.",
        )

    def handle(self, *args, **options):
        if not settings.HPCGATE_ALLOW_DEMO_USERS and not options["allow_demo_users"]:
            raise CommandError(
                "Refusing to create demo users with a published password while DEBUG is off. "
                "Pass --allow-demo-users if this really is a demonstration site."
            )
        with transaction.atomic():
            reference = seed.reference_data_seed()
            call = seed.demo_call_seed()
            users = seed.demo_users_seed()
            extra = seed.demo_extras_seed()
        self.stdout.write(
            f"Reference data: {reference['partitions']} partitions on "
            f"{len(seed.SYSTEMS)} systems, threshold policy in force."
        )
        self.stdout.write(f"Open call: {call.title} ({call.access_modes.count()} access modes).")
        for line in extra:
            self.stdout.write(line)
        self.stdout.write(f"Demo users (password '{seed.DEMO_PASSWORD}'): " + ", ".join(users))
