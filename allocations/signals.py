"""What allocations announce to the apps above them, which allocations never import."""

from django.dispatch import Signal

# Sent with `allocation=` inside the transaction that gave an allocation its account (created,
# imported or renamed): usage already imported under that account now belongs to it.
allocation_account_assigned = Signal()

# Sent with `allocation=` when the window of the jobs that count against an allocation moved (its
# dates, its call's grace, its site's time zone): usage is attributed again by the new window.
allocation_window_changed = Signal()
