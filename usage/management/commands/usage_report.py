import json

from django.core.management.base import BaseCommand, CommandError

from allocations.models import Allocation
from allocations.names import account_key
from usage.selectors import allocation_usage
from usage.services import usage_attribute


def allocation_report(allocation: Allocation) -> dict:
    """An allocation's figures as plain JSON values (the usage_report contract)."""
    totals = allocation_usage(allocation=allocation)
    granted = allocation.gpu_hours
    data = {
        "cluster": allocation.cluster.name,
        "account": allocation.account,
        "partition": allocation.partition.name,
        "model": allocation.model_name or None,
        "granted_gpu_hours": granted,
        "used_fraction": totals.gpu_hours / granted if granted else None,
    }
    data.update(totals.to_dict())
    return data


class Command(BaseCommand):
    help = (
        "Print an allocation's usage as JSON: GPU-hours against the grant, training-compute "
        "estimate and upper bound, energy (measured, estimated or mixed), CO2e, first start, "
        "last end and job count."
    )

    def add_arguments(self, parser):
        parser.add_argument("--account", required=True, help="Slurm account of the allocation.")
        parser.add_argument("--cluster", required=True, help="Cluster name.")
        parser.add_argument("--format", choices=["json"], default="json")

    def handle(self, *args, **options):
        allocation = (
            Allocation.objects.select_related("cluster__site", "partition")
            .filter(cluster__name=options["cluster"], account_key=account_key(options["account"]))
            .first()
        )
        if allocation is None:
            raise CommandError(
                f"No allocation with account '{options['account']}' on cluster "
                f"'{options['cluster']}'."
            )
        # usage imported before the allocation existed is its usage too
        usage_attribute(cluster=allocation.cluster)
        self.stdout.write(json.dumps(allocation_report(allocation), indent=2, sort_keys=True))
