from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from demo import reference as seed
from systems.reference import SYSTEMS, reference_data_seed


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
        with_demo_users = settings.HPCGATE_ALLOW_DEMO_USERS or options["allow_demo_users"]
        with transaction.atomic():
            reference = reference_data_seed()
            call = seed.demo_call_seed()
            if with_demo_users:
                users = seed.demo_users_seed()
                extra = seed.demo_extras_seed()
        self.stdout.write(
            f"Reference data: {reference['partitions']} partitions on "
            f"{len(SYSTEMS)} systems, threshold policy in force."
        )
        self.stdout.write(f"Open call: {call.title} ({call.access_modes.count()} access modes).")
        if not with_demo_users:
            self.stderr.write(
                "Refused the demo users (a published password) and their demo applications "
                "while DEBUG is off. Pass --allow-demo-users if this really is a demonstration "
                "site."
            )
            return
        for line in extra:
            self.stdout.write(line)
        self.stdout.write(f"Demo users (password '{seed.DEMO_PASSWORD}'): " + ", ".join(users))
