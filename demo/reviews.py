"""Demo data for the review workflow: applications under review, one assigned to
`reviewer` only and one to `reviewer2` only, and one approved with its allocations. The intake
seed's own applications are left as they are.

Runs after the intake and allocation seeds and is safe to run again: every step goes through
vetting.services.review and is taken only when the application is in the state before it.
"""

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from demo.builders import complete_fields, minimal_pdf
from demo.reference import DEMO_CALL_SLUG
from systems.models import Call, Partition
from vetting.models import Application, ReviewAssignment
from vetting.services import intake as services
from vetting.services import review as workflow

# owner, title, cluster, GPU-hours, model, domain, modality, parameters, tokens, reviewers
DEMO_REVIEWS = (
    (
        "applicant",
        "Finnish public-sector document assistant",
        "lumi",
        30_000,
        "aurora-docs-3b",
        Application.Domain.LANGUAGE,
        Application.Modality.TEXT,
        3_000_000_000,
        60_000_000_000,
        ("reviewer",),
    ),
    (
        "applicant2",
        "Galician and Basque speech recognition",
        "marenostrum5",
        10_000,
        "lince-asr-eu-1b",
        Application.Domain.SPEECH,
        Application.Modality.AUDIO,
        1_000_000_000,
        40_000_000_000,
        ("reviewer2",),
    ),
    (
        "applicant2",
        "Catalan text-to-speech for public services",
        "vega",
        8_000,
        "lince-tts-300m",
        Application.Domain.SPEECH,
        Application.Modality.AUDIO,
        300_000_000,
        30_000_000_000,
        ("reviewer", "reviewer2"),
    ),
)
APPROVED_TITLE = "Catalan text-to-speech for public services"
DEMO_SCORES = {"technical": 4, "innovation": 4, "resources": 4, "ethics": 5, "ai_act": 4}


def _screened(application: Application) -> Application:
    if application.state in (Application.State.SUBMITTED, Application.State.SCREENING):
        workflow.application_screen(application_id=application.pk)
        application.refresh_from_db()
    return application


def _assigned(application: Application, reviewer, manager) -> ReviewAssignment | None:
    found = application.assignments.filter(reviewer=reviewer).first()
    if found or application.state != Application.State.IN_REVIEW:
        return found
    return workflow.reviewer_assign(application=application, reviewer=reviewer, actor=manager)


def _demo_application(call: Call, users: dict, row) -> Application | None:
    owner_name, title, cluster, hours, model, domain, modality, parameters, tokens, _ = row
    owner = users.get(owner_name)
    organisation = owner.organisations.order_by("pk").first() if owner else None
    partition = Partition.objects.filter(cluster__name=cluster).first()
    if organisation is None or partition is None:
        return None
    application = Application.objects.filter(organisation=organisation, title=title).first()
    if application is None:
        application = services.application_create(
            user=owner,
            organisation=organisation,
            access_mode=call.access_modes.get(kind="fast_lane"),
        )
        services.application_save_draft(
            application=application,
            actor=owner,
            fields=complete_fields(
                title=title,
                pi_name=owner.get_full_name(),
                pi_email=owner.email,
                model_name=model,
                domain=domain,
                modality=modality,
                parameters=parameters,
                training_tokens=tokens,
            ),
            resources={partition.pk: hours},
            annex=SimpleUploadedFile("technical-annex.pdf", minimal_pdf(title[:60])),
        )
    if application.state == Application.State.DRAFT:
        services.application_submit(application=application, actor=owner)
    return _screened(application)


def _reviewed_and_approved(application: Application, users: dict, manager, hours: dict) -> None:
    for name in ("reviewer", "reviewer2"):
        assignment = application.assignments.filter(reviewer=users[name]).first()
        if assignment and assignment.state == ReviewAssignment.State.PENDING:
            workflow.conflict_confirm_none(assignment=assignment, reviewer=users[name])
            assignment.refresh_from_db()
        if assignment and assignment.state == ReviewAssignment.State.ACCEPTED:
            workflow.review_submit(
                assignment=assignment,
                reviewer=users[name],
                scores=DEMO_SCORES,
                comment="Clear plan, modest request, strong public-service use case.",
                recommendation="approve",
            )
    application.refresh_from_db()
    if application.state == Application.State.REVIEWED:
        workflow.application_approve(
            application=application,
            actor=manager,
            reason="Both reviewers recommend it; it fits the Fast Lane capacity.",
            grants=hours,
        )
        application.refresh_from_db()


def demo_reviews_seed() -> list[str]:
    call = Call.objects.filter(slug=DEMO_CALL_SLUG).first()
    users = get_user_model().objects.in_bulk(
        ["reviewer", "reviewer2", "manager", "applicant", "applicant2"], field_name="username"
    )
    if call is None or not {"reviewer", "reviewer2", "manager"} <= set(users):
        return ["Demo reviews: skipped (no demo call or users)."]
    manager = users["manager"]
    workflow.rubric_ensure(call)
    lines = []
    for row in DEMO_REVIEWS:
        application = _demo_application(call, users, row)
        if application is None:
            continue
        for reviewer in row[-1]:
            _assigned(application, users[reviewer], manager)
        if application.title == APPROVED_TITLE:
            hours = {r.partition_id: r.gpu_hours for r in application.resources.all()}
            _reviewed_and_approved(application, users, manager, hours)
        reviewers = " and ".join(row[-1])
        lines.append(
            f"“{application.title}”: {application.get_state_display().lower()} ({reviewers})."
        )
    return [f"Demo reviews: {' '.join(lines) or 'nothing to do.'}"]
