from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.db.models.signals import post_migrate


def _roles_after_migrate(sender, **kwargs) -> None:
    from core.roles import roles_ensure

    roles_ensure()


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Roles and shared plumbing"

    def ready(self) -> None:
        from core.identity import role_maps_check
        from core.strict_json import strict_json_apply
        from core.tasks import broker_folders_ensure

        strict_json_apply()
        # The web process enqueues tasks too: the embedded broker's folders must exist.
        broker_folders_ensure()
        # A misspelt role in OIDC_<ID>_ENTITLEMENT_ROLES stops every process at start-up.
        role_maps_check()
        post_migrate.connect(_roles_after_migrate, dispatch_uid="hpcgate-roles")


class HpcgateAdminConfig(admin_apps.AdminConfig):
    """Django's admin, on hpcgate's admin site (core.admin_site)."""

    default = False
    default_site = "core.admin_site.HpcgateAdminSite"
