from django.apps import AppConfig
from django.db.models.signals import post_save


def _call_saved(sender, *, instance, created, **kwargs) -> None:
    if not created:
        from allocations.models import Allocation
        from allocations.services import allocation_windows_refresh

        allocations = Allocation.objects.filter(access_mode__call=instance)
        allocation_windows_refresh(
            allocations=allocations.select_related("cluster__site", "access_mode__call")
        )


def _site_saved(sender, *, instance, created, **kwargs) -> None:
    if not created:
        from allocations.models import Allocation
        from allocations.services import allocation_windows_refresh

        allocations = Allocation.objects.filter(cluster__site=instance)
        allocation_windows_refresh(
            allocations=allocations.select_related("cluster__site", "access_mode__call")
        )


class AllocationsConfig(AppConfig):
    name = "allocations"
    verbose_name = "Allocations and scheduler export"

    def ready(self) -> None:
        from systems.models import Call, Site

        # A call's grace and a site's time zone decide the usage windows of allocations.
        post_save.connect(_call_saved, sender=Call, dispatch_uid="allocations-call-window")
        post_save.connect(_site_saved, sender=Site, dispatch_uid="allocations-site-window")
