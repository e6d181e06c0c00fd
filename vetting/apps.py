from django.apps import AppConfig


class VettingConfig(AppConfig):
    name = "vetting"
    verbose_name = "Applications and vetting"

    def ready(self) -> None:
        from django.contrib import admin

        from core.admin_site import AdminPage

        # The ranking page is where call managers decide: listed with the vetting models.
        admin.site.page_add(
            AdminPage("vetting", "Ranking and decisions", "ranking:index", "vetting.add_decision")
        )
