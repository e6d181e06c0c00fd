import json

from django.core.management.base import BaseCommand, CommandError

from core.numbers import parse_number
from systems.estimates import PolicyFigures, estimate
from systems.models import Partition, ThresholdPolicy


def _number(text: str) -> float:
    try:
        return parse_number(text)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc


class Command(BaseCommand):
    help = (
        "Estimate the training compute, energy and emissions of a run on one partition, under "
        "the threshold policy in force."
    )

    def add_arguments(self, parser):
        parser.add_argument("--cluster", required=True, help="Slurm cluster name, e.g. lumi.")
        parser.add_argument("--partition", required=True, help="Slurm partition, e.g. standard-g.")
        parser.add_argument("--gpu-hours", help="Hours of the partition's scheduler GPU.")
        parser.add_argument("--parameters", help="Model parameters, e.g. 7e9.")
        parser.add_argument("--tokens", help="Training tokens, e.g. 2e12.")
        parser.add_argument(
            "--utilisation", help="Share of peak FLOP/s (default: the policy's, usually 0.4)."
        )
        parser.add_argument("--synthetic-flop", help="Compute for non-public synthetic data.")
        parser.add_argument("--base-model", default="", help="Name of the model being modified.")
        parser.add_argument("--base-model-flop", help="Training compute of the base model.")
        parser.add_argument(
            "--base-systemic-risk",
            action="store_true",
            help="The base model is a GPAI model with systemic risk.",
        )
        parser.add_argument("--format", choices=["json", "text"], default="text")

    def handle(self, *args, **options):
        if (options["parameters"] is None) != (options["tokens"] is None):
            raise CommandError("Give both --parameters and --tokens, or neither.")
        try:
            partition = Partition.objects.select_related("cluster__site").get(
                cluster__name=options["cluster"], name=options["partition"]
            )
        except Partition.DoesNotExist:
            known = ", ".join(
                str(p)
                for p in Partition.objects.select_related("cluster").order_by("cluster__name")
            )
            raise CommandError(
                f"Unknown partition {options['cluster']}/{options['partition']}. "
                f"Known partitions: {known or 'none (run seed_demo first)'}."
            ) from None
        policy = ThresholdPolicy.objects.in_force()
        if policy is None:
            self.stderr.write("No threshold policy is in force; using the built-in defaults.")
        figures = policy.figures() if policy else PolicyFigures()

        def optional(name: str) -> float | None:
            return None if options[name] is None else _number(options[name])

        try:
            result = estimate(
                partition=partition.figures(),
                gpu_hours=optional("gpu_hours"),
                parameters=optional("parameters"),
                tokens=optional("tokens"),
                utilisation=optional("utilisation"),
                policy=figures,
                synthetic_data_flop=optional("synthetic_flop") or 0.0,
                base_model=options["base_model"],
                base_model_flop=optional("base_model_flop"),
                base_is_systemic_risk=options["base_systemic_risk"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        given = ("gpu_hours", "parameters", "synthetic_flop", "base_model_flop")
        if all(options[name] is None for name in given):
            raise CommandError(
                "Nothing to estimate: give --gpu-hours, or --parameters and --tokens."
            )
        data = {
            "cluster": partition.cluster.name,
            "partition": partition.name,
            "policy_version": policy.version if policy else None,
            **result.to_dict(),
        }
        if options["format"] == "json":
            self.stdout.write(json.dumps(data, indent=2, sort_keys=True))
            return
        for key, value in data.items():
            shown = f"{value:.2e}" if isinstance(value, float) and "flop" in key else value
            self.stdout.write(f"{key}: {shown}")
