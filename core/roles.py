"""The staff roles, as Django groups with model permissions.

Applicants are ordinary users: no group, no admin access. The permissions of each group are
(re)applied after every migration, so a new model's permissions reach the roles on upgrade.
"""

from django.contrib.auth.models import Group, Permission

REVIEWER = "reviewer"
CALL_MANAGER = "call manager"
OPERATOR = "operator"
GOVERNANCE_OFFICER = "governance officer"

# app label -> model -> actions, per role.
ROLE_PERMISSIONS: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    REVIEWER: {
        # Reviewers reach applications only through their own assignments (vetting.admin.review),
        # never through the application list, so they get no permission on Application itself.
        "systems": {
            "call": ("view",),
            "accessmode": ("view",),
            "partition": ("view",),
        },
        "vetting": {
            "reviewassignment": ("view",),
            "review": ("view", "add", "change"),
            "criterionscore": ("view", "add", "change"),
            "rubric": ("view",),
            "rubriccriterion": ("view",),
        },
    },
    CALL_MANAGER: {
        "organisations": {
            # the identity fields the owners can no longer change after the first submission
            "organisation": ("view", "change"),
            "membership": ("view",),
            "country": ("view",),
            "invitation": ("view",),
        },
        "systems": {
            "call": ("view", "add", "change"),
            "accessmode": ("view", "add", "change", "delete"),
            "accessmodepartition": ("view", "add", "change", "delete"),
            "partition": ("view",),
            "cluster": ("view",),
            "site": ("view",),
            "thresholdpolicy": ("view",),
        },
        "allocations": {
            "allocation": ("view", "add", "change"),
            "allocationuser": ("view",),
            "allocationevent": ("view",),
            "changerequest": ("view", "change"),
        },
        "usage": {
            "usagerecord": ("view",),
            "usageimport": ("view",),
        },
        "compliance": {
            "alert": ("view", "change"),
            "largerunentry": ("view",),
        },
        "vetting": {
            "application": ("view",),
            "applicationresource": ("view",),
            "applicationevent": ("view",),
            "screeningflag": ("view",),
            "reviewerprofile": ("view", "add", "change", "delete"),
            "conflictdeclaration": ("view", "add", "change"),
            "reviewassignment": ("view", "add", "change", "delete"),
            "rubric": ("view", "add", "change"),
            "rubriccriterion": ("view", "add", "change", "delete"),
            "review": ("view",),
            "criterionscore": ("view",),
            "decision": ("view", "add"),
            "decisiongrant": ("view",),
        },
    },
    OPERATOR: {
        "organisations": {
            "organisation": ("view",),
        },
        "systems": {
            "site": ("view", "add", "change"),
            "cluster": ("view", "add", "change"),
            "partition": ("view", "add", "change"),
            "call": ("view",),
            "accessmode": ("view",),
            "accessmodepartition": ("view",),
            "thresholdpolicy": ("view",),
        },
        "allocations": {
            "allocation": ("view", "change"),
            "allocationuser": ("view",),
            "allocationevent": ("view",),
            "changerequest": ("view",),
            "schedulerexport": ("view", "add"),
        },
        "usage": {
            "usagerecord": ("view",),
            "usageimport": ("view", "add"),
            "sitetoken": ("view", "add", "change"),
        },
        "compliance": {
            "alert": ("view", "change"),
        },
        "django_celery_beat": {
            "periodictask": ("view", "change"),
        },
    },
    GOVERNANCE_OFFICER: {
        "organisations": {
            "organisation": ("view",),
        },
        "systems": {
            "thresholdpolicy": ("view", "add", "change"),
            "call": ("view",),
            "partition": ("view",),
            "cluster": ("view",),
            "site": ("view",),
        },
        "allocations": {
            "allocation": ("view",),
        },
        "usage": {
            "usagerecord": ("view",),
        },
        "compliance": {
            "alert": ("view", "change"),
            "largerunentry": ("view", "change"),
            # Confidential reports: governance officers only (compliance.admin checks the role
            # as well, so a superuser outside the role does not read them either).
            "misusereport": ("view", "change"),
            "reportmessage": ("view",),
        },
        "vetting": {
            "application": ("view",),
            "applicationresource": ("view",),
        },
    },
}

ROLES = tuple(ROLE_PERMISSIONS)


def has_role(user, role: str) -> bool:
    """Whether the user is active and holds the role (a Django group), superuser or not."""
    return bool(
        user is not None
        and user.is_active
        and user.is_authenticated
        and user.groups.filter(name=role).exists()
    )


def roles_ensure() -> dict[str, Group]:
    """Create the role groups and give each exactly its permissions."""
    groups = {}
    for role, apps in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for app_label, models in apps.items():
            codenames = [
                f"{action}_{model}" for model, actions in models.items() for action in actions
            ]
            found = Permission.objects.filter(
                content_type__app_label=app_label, codename__in=codenames
            )
            wanted.extend(found)
        group.permissions.set(wanted)
        groups[role] = group
    return groups
