"""The people and objects of the permission matrix, every URL pattern as a concrete address,
and every operation of the API schema.

tests/config/test_permission_matrix.py holds the expected statuses; this module only builds
what is asked. `python -m tests.config.matrix` is not a thing: to see what the site answers
today, run the test with HPCGATE_MATRIX_DUMP=1 and read the table it prints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.urls import URLPattern, URLResolver, get_resolver

from allocations.models import ChangeRequest, SchedulerExport
from compliance.models import Alert, LargeRunEntry
from core import roles
from core.services import token_create
from organisations.models import Invitation, Membership
from systems.models import ThresholdPolicy
from tests.factories import (
    make_allocation,
    make_application,
    make_organisation,
    make_usage_record,
    make_user,
)
from vetting.models import Application
from vetting.services import review as workflow

IDENTITIES = ("anon", "applicant", "stranger", "reviewer", "manager", "operator", "governance")


def patterns(resolver=None, prefix: str = "") -> list[str]:
    """Every URL pattern of the site as one route string, admin and API included."""
    resolver = resolver or get_resolver()
    found = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            found.extend(patterns(entry, prefix + str(entry.pattern)))
        elif isinstance(entry, URLPattern):
            found.append(prefix + str(entry.pattern))
    return found


@dataclass
class World:
    people: dict
    values: dict
    model_objects: dict


def world() -> World:
    """One of each person and object the pages and operations are about."""
    applicant = make_user(username="founder")
    stranger = make_user(username="rival")
    reviewer = make_user(username="expert", role=roles.REVIEWER)
    manager = make_user(username="chair", role=roles.CALL_MANAGER)
    operator = make_user(username="ops", role=roles.OPERATOR)
    governance = make_user(username="gov", role=roles.GOVERNANCE_OFFICER)
    make_organisation(legal_name="Rival Oy", owner=stranger)
    organisation = make_organisation(owner=applicant)
    application = make_application(
        applicant=applicant, organisation=organisation, state=Application.State.IN_REVIEW
    )
    assignment = workflow.reviewer_assign(application=application, reviewer=reviewer, actor=manager)
    allocation = make_allocation(organisation=organisation, model_name="acme-7b")
    make_usage_record(allocation=allocation)
    change = ChangeRequest.objects.create(
        allocation=allocation,
        kind="top_up",
        extra_gpu_hours=10,
        justification="More.",
        requested_by=applicant,
    )
    invitation = Invitation.objects.create(
        organisation=organisation, email="new@acme.example", role=Membership.Role.MEMBER,
        invited_by=applicant,
    )  # fmt: skip
    policy = ThresholdPolicy.objects.in_force()
    alert = Alert.objects.create(
        level="gpai", scope="model", subject="acme-7b", subject_key="acme-7b@x", policy=policy,
        value=1.1e23, threshold=1e23, allocation=allocation,
    )  # fmt: skip
    entry = LargeRunEntry.objects.create(
        scope="model", subject="acme-7b", subject_key="acme-7b@x", category="gpai",
        basis="used", compute_flop=1.1e23, method="hardware", policy=policy,
        first_crossed_on=alert.raised_at.date(),
    )  # fmt: skip
    export = SchedulerExport.objects.create(format="csv", checksum="0" * 64, content="")
    token, _ = token_create(user=applicant, name="script")
    people = {
        "anon": None,
        "applicant": applicant,
        "stranger": stranger,
        "reviewer": reviewer,
        "manager": manager,
        "operator": operator,
        "governance": governance,
    }
    values = {
        "organisation": organisation.pk,
        "application": application.pk,
        "allocation": allocation.pk,
        "assignment": assignment.pk,
        "change": change.pk,
        "alert": alert.pk,
        "entry": entry.pk,
        "export": export.pk,
        "token": token.pk,
        "invitation": invitation.token,
        "mode": application.access_mode_id,
        "call": application.call.slug,
        "partition": allocation.partition_id,
        "decision": 999_999,
        "user": applicant.pk,
        "content_type": ContentType.objects.get_for_model(get_user_model()).pk,
        "username": "alice",
        "model": "acme-7b",
    }
    model_objects = {}
    for model in admin.site._registry:
        first = model._default_manager.order_by("pk").first()
        model_objects[model._meta.label_lower] = first.pk if first else 999_999
    return World(people, values, model_objects)


# Which value fills which part of a route, by the route's start.
_PK_BY_PREFIX = (
    ("accounts/tokens/", "token"),
    ("organisations/", "organisation"),
    ("applications/", "application"),
    ("allocations/", "allocation"),
    ("usage/allocations/", "allocation"),
    ("api/v1/usage/allocations/", "allocation"),
    ("api/v1/^applications/", "application"),
    ("api/v1/^allocations/", "allocation"),
    ("api/v1/allocations/", "allocation"),
    ("api/v1/^review-assignments/", "assignment"),
    ("api/v1/^change-requests/", "change"),
    ("api/v1/^alerts/", "alert"),
    ("api/v1/^register/", "entry"),
    ("api/v1/exports/", "export"),
    ("api/v1/^auth/tokens/", "token"),
    ("api/v1/^decisions/", "decision"),
    ("api/v1/^partitions/", "partition"),
    ("admin/vetting/reviewassignment/<int:pk>", "assignment"),
    ("admin/allocations/schedulerexport/<int:pk>", "export"),
)


def _admin_model(route: str) -> str | None:
    match = re.match(r"admin/(\w+)/(\w+)/", route)
    if match and f"{match[1]}.{match[2]}" in _ADMIN_LABELS:
        return f"{match[1]}.{match[2]}"
    return None


_ADMIN_LABELS: set[str] = set()


def address(route: str, w: World) -> str:
    """The route with its parameters filled in from the world."""
    _ADMIN_LABELS.update(w.model_objects)
    values = w.values
    pk = next((values[key] for start, key in _PK_BY_PREFIX if route.startswith(start)), None)
    model = _admin_model(route)
    object_id = w.model_objects.get(model, 999_999) if model else pk
    named = {
        "pk": pk,
        "id": pk,
        "mode_id": values["mode"],
        "token": values["invitation"],
        "model_name": values["model"],
        "object_id": object_id,
        "content_type_id": values["content_type"],
        "slug": values["call"],
        "app_label": "vetting",
        "url": "nowhere/",
        "key": "not-a-key",
        "uidb36": "1",
        "provider_id": "nobody",
        "format": "json",
        "username": values["username"],
        "cluster": "lumi",
    }
    if "<drf_format_suffix:format>" in route:
        named["format"] = ".json"
    path = route.replace("^", "").replace("$", "").replace("\\.", ".").replace("/?", "/")
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: str(named[m[1]]), path)
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(named[m[1]]), path)
    # unnamed groups: simple_history's history_form_view (object, history id)
    positional = iter([object_id, 999_999])
    path = re.sub(r"\([^)]*\)", lambda m: str(next(positional)), path)
    if path.startswith("api/v1/usage/models/"):
        path += f"?name={values['model']}"
    return "/" + path
