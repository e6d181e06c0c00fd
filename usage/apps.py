from django.apps import AppConfig


def _attribute_unmatched(sender, *, allocation, **kwargs) -> None:
    from usage.services import usage_attribute

    usage_attribute(allocation=allocation)


class UsageConfig(AppConfig):
    name = "usage"
    verbose_name = "Usage accounting"

    def ready(self) -> None:
        from allocations.signals import allocation_account_assigned, allocation_window_changed

        allocation_account_assigned.connect(_attribute_unmatched, dispatch_uid="usage-attribute")
        allocation_window_changed.connect(_attribute_unmatched, dispatch_uid="usage-window")
