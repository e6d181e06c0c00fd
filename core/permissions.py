"""API permissions that mirror the admin's: staff, with the model permission the admin page
needs (view for reads, change for actions)."""

from rest_framework import permissions


class StaffModelPermission(permissions.BasePermission):
    """`model` is `app_label.modelname`; reads need its view permission, writes `write_action`."""

    model = ""
    write_action = "change"

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active and user.is_staff):
            return False
        app_label, name = self.model.split(".")
        action = "view" if request.method in permissions.SAFE_METHODS else self.write_action
        return user.has_perm(f"{app_label}.{action}_{name}")
