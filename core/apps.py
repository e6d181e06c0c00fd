from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Shared plumbing"

    def ready(self) -> None:
        from .identity import role_maps_check

        # A misspelt role in OIDC_<ID>_ENTITLEMENT_ROLES stops every process at start-up.
        role_maps_check()
