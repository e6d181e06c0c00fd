"""What allocations announce to the apps above them, which allocations never import."""

from django.dispatch import Signal

# Sent with `allocation=` inside the transaction that gave an allocation its account (created,
# imported or renamed): usage already imported under that account now belongs to it.
allocation_account_assigned = Signal()
