from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance and the large-run register"

    def ready(self) -> None:
        from compliance import checks  # noqa: F401  (registers the system checks)
