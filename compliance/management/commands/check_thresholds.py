from datetime import date

from django.core.management.base import BaseCommand, CommandError

from compliance.monitoring import thresholds_check


class Command(BaseCommand):
    help = (
        "Run the periodic threshold check now: allocation use and training compute per "
        "allocation, declared model and organisation group. Prints one line per alert raised."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--date",
            type=date.fromisoformat,
            help="Evaluate as of this day (YYYY-MM-DD): picks the policy in force then.",
        )

    def handle(self, *args, **options):
        result = thresholds_check(today=options["date"])
        if result.policy is None:
            raise CommandError("No threshold policy is in force; add one in the admin first.")
        for alert in result.alerts:
            self.stdout.write(alert.line)
        for allocation in result.exhausted:
            self.stderr.write(
                f"blocked {allocation.cluster.name}:{allocation.account}: grant used up "
                "(the next 'commands' export sets GrpSubmitJobs=0)"
            )
        for entry in result.register_opened:
            deadline = (
                f", art. 52 notification due {entry.notification_deadline:%Y-%m-%d}"
                if entry.notification_deadline
                else ""
            )
            self.stderr.write(
                f"register: {entry.get_scope_display().lower()} {entry.subject} "
                f"{entry.category} ({entry.compute_flop:.2g} FLOP {entry.basis}){deadline}"
            )
        self.stdout.write(f"alerts={len(result.alerts)}")
