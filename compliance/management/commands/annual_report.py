import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from compliance.reports import annual_report


class Command(BaseCommand):
    help = (
        "Print the annual report: efforts per threshold band, GPU-hours, compute, energy and "
        "CO2e by system and access mode, the largest training efforts, split-run alerts and "
        "the number of confidential reports."
    )

    def add_arguments(self, parser):
        parser.add_argument("--year", type=int, default=timezone.localdate().year)
        parser.add_argument(
            "--anonymise", action="store_true", help="Hide model and company names."
        )
        parser.add_argument("--format", choices=["text", "json"], default="text")

    def handle(self, *args, **options):
        year = options["year"]
        if not 2000 <= year <= 2100:
            raise CommandError(f"--year {year} is not a plausible year.")
        report = annual_report(year=year, anonymise=options["anonymise"])
        if report is None:
            raise CommandError(f"No threshold policy was in force in {year}.")
        data = report.as_dict()
        if options["format"] == "json":
            self.stdout.write(json.dumps(data, indent=2, sort_keys=True))
            return
        self.stdout.write(
            f"hpcgate annual report {year} (policy v{data['policy_version']}, "
            f"utilisation {data['utilisation']:g})"
        )
        bands = data["efforts_per_band"]
        self.stdout.write(
            f"Efforts: {bands['below_gpai']} below GPAI, {bands['gpai']} GPAI, "
            f"{bands['systemic_risk']} systemic risk"
        )
        for title, rows in (
            ("By system", data["by_system"]),
            ("By access mode", data["by_access_mode"]),
        ):
            self.stdout.write(f"\n{title}:")
            self.stdout.write(
                f"  {'':28} {'GPU-hours':>14} {'FLOP':>10} {'kWh (IT)':>12} {'kg CO2e':>12}"
            )
            for row in [*rows, data["total"]]:
                self.stdout.write(
                    f"  {row['label'][:28]:28} {row['gpu_hours']:>14,.0f} {row['flop']:>10.2g} "
                    f"{row['energy_kwh']:>12,.0f} {row['co2e_kg']:>12,.0f}"
                )
        self.stdout.write("\nLargest efforts:")
        for effort in data["largest_efforts"]:
            self.stdout.write(
                f"  {effort['rank']:>2}. {effort['effort']}: {effort['flop']:.2g} FLOP "
                f"({effort['classification']}) - {', '.join(effort['organisations'])} on "
                f"{', '.join(effort['systems'])}"
            )
        split = data["split_runs"]
        self.stdout.write(
            f"\nSplit training runs: {split['footprint_alerts']} footprint, "
            f"{split['memory_alerts']} memory, {split['plan_deviations']} plan deviation alerts"
        )
        for alert in split["alerts"]:
            cited = " (cited in the register)" if alert["cited_in_register"] else ""
            self.stdout.write(
                f"  {alert['raised_on']} {alert['level']} {alert['scope']} {alert['subject']}: "
                f"{alert['value']} over {alert['threshold']}{cited}"
            )
        reports = data["confidential_reports"]
        self.stdout.write(
            f"\nConfidential reports: {reports['received']} received, "
            f"{reports['acknowledged_within_7_days']} acknowledged within 7 days, "
            f"{reports['closed']} closed"
        )
