"""Demo organisations and applications for seed_demo."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from demo.builders import complete_fields, minimal_pdf
from demo.reference import DEMO_CALL_SLUG
from organisations.models import Organisation
from organisations.services import organisation_create
from systems.models import AccessMode, Call, Partition
from vetting.models import Application
from vetting.services import intake as services

DEMO_ORGANISATIONS = (
    # owner, legal name, country, registration id, staff, turnover, balance sheet, website
    (
        "applicant",
        "Aurora AI Oy",
        "FI",
        "FI31234567",
        14,
        900_000,
        1_500_000,
        "https://aurora-ai.example",
    ),
    (
        "applicant2",
        "Lince Labs SL",
        "ES",
        "ESB12345678",
        9,
        400_000,
        700_000,
        "https://lince-labs.example",
    ),
)

# owner, title, access mode, partition cluster, GPU-hours, submitted?, overrides
DEMO_APPLICATIONS = (
    (
        "applicant",
        "Finnish and Swedish legal language model",
        AccessMode.Kind.FAST_LANE,
        "lumi",
        40_000,
        True,
        {"model_name": "aurora-legal-7b"},
    ),
    (
        "applicant",
        "Aurora legal model: continued pre-training at scale",
        AccessMode.Kind.LARGE_SCALE,
        "lumi",
        300_000,
        False,
        {
            "model_name": "aurora-legal-7b",
            "training_kind": Application.TrainingKind.CONTINUED_PRETRAINING,
            "base_model": "aurora-legal-7b v1",
            "duration_months": 6,
        },
    ),
    (
        "applicant2",
        "Spanish clinical speech recognition",
        AccessMode.Kind.FAST_LANE,
        "marenostrum5",
        12_000,
        True,
        {
            "model_name": "lince-asr-1b",
            "domain": Application.Domain.HEALTH,
            "modality": Application.Modality.AUDIO,
            "parameters": 1_000_000_000,
            "training_tokens": 50_000_000_000,
        },
    ),
)


def demo_applications_seed() -> list[str]:
    User = get_user_model()
    call = Call.objects.filter(slug=DEMO_CALL_SLUG).first()
    if call is None:
        return ["Demo applications: skipped (no demo call)."]
    organisations = {}
    for owner, name, country, reg_id, staff, turnover, balance, website in DEMO_ORGANISATIONS:
        user = User.objects.filter(username=owner).first()
        if user is None:
            continue
        organisation = Organisation.objects.filter(registration_id=reg_id).first()
        if organisation is None:
            organisation = organisation_create(
                user=user,
                legal_name=name,
                country=country,
                registration_id=reg_id,
                staff_headcount=staff,
                annual_turnover_eur=turnover,
                balance_sheet_eur=balance,
                website=website,
                founding_date=timezone.localdate() - timedelta(days=3 * 365),
            )
        organisations[owner] = (user, organisation)

    created = 0
    for owner, title, kind, cluster, hours, submit, overrides in DEMO_APPLICATIONS:
        if owner not in organisations:
            continue
        user, organisation = organisations[owner]
        if Application.objects.filter(organisation=organisation, title=title).exists():
            continue
        mode = call.access_modes.get(kind=kind)
        application = services.application_create(
            user=user, organisation=organisation, access_mode=mode
        )
        partition = Partition.objects.filter(cluster__name=cluster).first()
        services.application_save_draft(
            application=application,
            actor=user,
            fields=complete_fields(
                title=title, pi_name=user.get_full_name(), pi_email=user.email, **overrides
            ),
            resources={partition.pk: hours} if partition else {},
            annex=SimpleUploadedFile("technical-annex.pdf", minimal_pdf(title[:60])),
        )
        if submit:
            services.application_submit(application=application, actor=user)
        created += 1

    states = Application.objects.filter(organisation__in=[o for _, o in organisations.values()])
    drafts = states.filter(state=Application.State.DRAFT).count()
    submitted = states.exclude(state=Application.State.DRAFT).count()
    return [
        f"Demo organisations: {', '.join(o.legal_name for _, o in organisations.values())}.",
        f"Demo applications: {drafts} draft, {submitted} submitted ({created} new).",
    ]
