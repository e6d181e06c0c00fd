"""The one place tests make what they need: one function per entity, keyword-only arguments
with sensible defaults, anything nested made on demand.

Applications are built on demo.builders (the product's builder for demo data, a complete draft
with its annex) and then taken through the services, so a test gets an application in the
state it asks for exactly as the product would have put it there.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from itertools import count

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from allocations import services as allocation_services
from allocations.models import Allocation
from core import roles
from demo.builders import application_for
from demo.reference import demo_call_seed
from organisations.models import Membership, Organisation
from systems.models import Call, Cluster, Partition, Site
from systems.reference import reference_data_seed
from usage.models import SiteToken, UsageRecord
from vetting.models import Application, Review, ReviewAssignment
from vetting.services import intake as intake_services
from vetting.services import review as review_services

PASSWORD = "correct-horse-battery-staple"
GOOD_SCORES = {"technical": 4, "innovation": 4, "resources": 4, "ethics": 4, "ai_act": 4}

_serial = count(1)


def days(n: int) -> date:
    """The date n days from today (negative: ago)."""
    return timezone.localdate() + timedelta(days=n)


def partition(cluster: str = "lumi") -> Partition:
    """The partition of one of the seeded systems of the domain."""
    return Partition.objects.select_related("cluster").filter(cluster__name=cluster).first()


def make_user(*, username: str | None = None, role: str | None = None, staff: bool | None = None):
    """A person with a verified e-mail address who logs in with PASSWORD; with a role, in its
    group and (unless told otherwise) staff."""
    username = username or f"person{next(_serial)}"
    user = get_user_model().objects.create_user(
        username=username,
        email=f"{username}@{username}.example",
        password=PASSWORD,
        is_staff=role is not None if staff is None else staff,
    )
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    if role:
        # migrate made the groups; roles_ensure again only where a test removed them
        group = Group.objects.filter(name=role).first() or roles.roles_ensure()[role]
        user.groups.add(group)
    return user


def make_organisation(
    *,
    legal_name: str = "Acme AI Oy",
    registration_id: str | None = None,
    country: str | None = None,
    controlled_by: str = "",
    owner=None,
    member=None,
    **fields,
) -> Organisation:
    """A small enterprise by the SME test, with `owner` and `member` as its members.

    The country defaults to the one the registration id starts with (as VAT numbers do), else
    FI; the registration id to one no other organisation of the test has.
    """
    if country is None:
        prefix = (registration_id or "")[:2]
        country = prefix.upper() if prefix.isalpha() and len(prefix) == 2 else "FI"
    organisation = Organisation.objects.create(
        legal_name=legal_name,
        country=country,
        registration_id=registration_id or f"{country}{Organisation.objects.count() + 1:08d}",
        controlled_by_registration_id=controlled_by,
        **{
            "staff_headcount": 12,
            "annual_turnover_eur": 800_000,
            "balance_sheet_eur": 1_200_000,
            **fields,
        },
    )
    for user, role in ((owner, Membership.Role.OWNER), (member, Membership.Role.MEMBER)):
        if user is not None:
            Membership.objects.create(organisation=organisation, user=user, role=role)
    return organisation


def make_cluster(*, name: str = "fox", display_name: str = "Fox") -> Cluster:
    """A cluster of the University of Oslo with one A100 partition, 'accel': by default Fox,
    the cluster of the shared sonar sample. Asking again returns the same cluster."""
    site, _ = Site.objects.get_or_create(
        name="University of Oslo",
        defaults={
            "country": "NO",
            "time_zone": "Europe/Oslo",
            "pue": Decimal("1.25"),
            "grid_kg_co2e_per_kwh": Decimal("0.0200"),
        },
    )
    cluster, _ = Cluster.objects.get_or_create(
        name=name, defaults={"site": site, "display_name": display_name}
    )
    Partition.objects.get_or_create(
        cluster=cluster,
        name="accel",
        defaults={
            "accelerator": "NVIDIA A100 40 GB",
            "gpus_per_node": 4,
            "nodes": 10,
            "peak_tflops": Decimal("312.00"),
            "power_watts": 400,
        },
    )
    return cluster


def make_allocation(
    *,
    organisation: Organisation | None = None,
    cluster: Cluster | str = "lumi",
    partition: Partition | None = None,
    account: str = "acme_llm",
    gpu_hours: int = 50_000,
    start: date | None = None,
    end: date | None = None,
    project: str = "Finnish legal LLM",
    model_name: str = "",
    users=("alice", "bob"),
    access_mode=None,
    actor=None,
) -> Allocation:
    """An allocation made by allocation_create, as the product makes one: active from yesterday
    for 90 days, with its 'created' event, its cluster users, and the usage already imported
    under its account attributed to it. The systems of the domain are seeded when missing."""
    if partition is None:
        name = cluster.name if isinstance(cluster, Cluster) else cluster
        if not Partition.objects.filter(cluster__name=name).exists():
            reference_data_seed()
        partition = Partition.objects.filter(cluster__name=name).order_by("id").first()
    return allocation_services.allocation_create(
        organisation=organisation or make_organisation(),
        project=project,
        partition=partition,
        account=account,
        gpu_hours=gpu_hours,
        start=start or days(-1),
        end=end or days(90),
        model_name=model_name,
        access_mode=access_mode,
        users=users,
        actor=actor,
    )


def make_usage_record(
    *, allocation: Allocation | None = None, gpu_seconds: int = 3600, **fields
) -> UsageRecord:
    """One completed single-GPU job of `gpu_seconds`, attributed to `allocation`."""
    allocation = allocation or make_allocation()
    job = str(next(_serial))
    return UsageRecord.objects.create(
        **{
            "cluster": allocation.cluster,
            "job_key": job,
            "job_id": job,
            "account": allocation.account,
            "allocation": allocation,
            "partition": allocation.partition,
            "state": "COMPLETED",
            "elapsed_seconds": gpu_seconds,
            "gpus": 1,
            "gpu_seconds": gpu_seconds,
            **fields,
        }
    )


def make_site_token(*, cluster: Cluster | str = "lumi", name: str = "lumi agent"):
    """(token, key) for a cluster's site agent; the key is what goes into the header."""
    if isinstance(cluster, str):
        if not Cluster.objects.filter(name=cluster).exists():
            reference_data_seed()
        cluster = Cluster.objects.get(name=cluster)
    token = SiteToken(cluster=cluster, name=name)
    key = token.key_issue()
    token.save()
    return token, key


def _open_call() -> Call:
    reference_data_seed()
    return demo_call_seed()


def make_application(
    *,
    applicant=None,
    call: Call | None = None,
    state: str = Application.State.DRAFT,
    organisation: Organisation | None = None,
    reviewers=(),
    manager=None,
    scores=(),
    **fields,
) -> Application:
    """An application by `applicant` to `call` (the demo call when none is given), taken to
    `state`: a complete draft, submitted, screened into review, or reviewed by each of
    `reviewers` (two when none are given) with `scores` in their order (GOOD_SCORES where
    missing). Other fields go to demo.builders.application_for: complete, kind, gpu_hours and
    the answers of the form."""
    applicant = applicant or make_user()
    call = call or _open_call()
    organisation = organisation or make_organisation(owner=applicant)
    application = application_for(applicant, call, organisation=organisation, **fields)
    if state == Application.State.DRAFT:
        return application
    application = intake_services.application_submit(application=application, actor=applicant)
    if state == Application.State.SUBMITTED:
        return application
    review_services.application_screen(application_id=application.pk)
    application.refresh_from_db()
    assert application.state == Application.State.IN_REVIEW, list(
        application.screening_flags.values_list("code", "message")
    )
    if state == Application.State.IN_REVIEW:
        return application
    if state != Application.State.REVIEWED:
        raise ValueError(
            f"make_application stops at draft, submitted, in_review or reviewed: {state}"
        )
    reviewers = reviewers or [make_user(role=roles.REVIEWER) for _ in range(2)]
    manager = manager or make_user(role=roles.CALL_MANAGER)
    for number, reviewer in enumerate(reviewers):
        make_review(
            application=application,
            reviewer=reviewer,
            manager=manager,
            scores=scores[number] if number < len(scores) else None,
        )
    application.refresh_from_db()
    assert application.state == Application.State.REVIEWED
    return application


def make_assignment(
    *, application: Application | None = None, reviewer=None, manager=None
) -> ReviewAssignment:
    """`reviewer` assigned to an application in review by `manager`, having confirmed that they
    have no conflict of interest."""
    application = application or make_application(state=Application.State.IN_REVIEW)
    reviewer = reviewer or make_user(role=roles.REVIEWER)
    manager = manager or make_user(role=roles.CALL_MANAGER)
    assignment = review_services.reviewer_assign(
        application=application, reviewer=reviewer, actor=manager
    )
    return review_services.conflict_confirm_none(assignment=assignment, reviewer=reviewer)


def make_review(
    *,
    application: Application | None = None,
    reviewer=None,
    manager=None,
    scores: dict | None = None,
    recommendation: str = "approve",
) -> Review:
    """A submitted review, through an accepted assignment (see make_assignment)."""
    assignment = make_assignment(application=application, reviewer=reviewer, manager=manager)
    return review_services.review_submit(
        assignment=assignment,
        reviewer=assignment.reviewer,
        scores=scores or GOOD_SCORES,
        recommendation=recommendation,
        comment="Solid plan.",
    )
