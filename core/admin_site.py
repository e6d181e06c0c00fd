"""The admin site: Django's, plus pages of the apps that are not a model's list (the ranking
page) in the index and the side menu, for the people allowed to open them."""

from dataclasses import dataclass

from django.contrib import admin
from django.urls import reverse


@dataclass(frozen=True)
class AdminPage:
    app_label: str
    name: str
    url_name: str
    permission: str


class HpcgateAdminSite(admin.AdminSite):
    site_header = "hpcgate administration"
    site_title = "hpcgate"
    index_title = "Calls, reviews, allocations and usage"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.extra_pages: list[AdminPage] = []

    def page_add(self, page: AdminPage) -> None:
        """Called by an app's ready(): list `page` in its app's section."""
        if page not in self.extra_pages:
            self.extra_pages.append(page)

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        for page in self.extra_pages:
            if not request.user.has_perm(page.permission):
                continue
            app = next((a for a in apps if a["app_label"] == page.app_label), None)
            if app is None:
                continue
            app["models"].append(
                {
                    "name": page.name,
                    "object_name": page.name.replace(" ", ""),
                    "admin_url": reverse(page.url_name),
                    "add_url": None,
                    "view_only": True,
                    "perms": {"view": True},
                    "model": None,
                }
            )
        return apps
