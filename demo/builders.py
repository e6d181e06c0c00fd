"""Factories for tests and demo data: an organisation, and applications at each stage."""

from datetime import date, timedelta

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from organisations.models import Organisation
from organisations.services import organisation_create
from systems.models import AccessMode, Call, Partition
from vetting import rules
from vetting.models import Application
from vetting.services.intake import application_create, application_save_draft


def minimal_pdf(pages_text: str = "Technical annex") -> bytes:
    """A small valid PDF (one page with a line of text), written out by hand."""
    stream = f"BT /F1 18 Tf 72 720 Td ({pages_text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)


def pdf_upload(name: str = "annex.pdf") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, minimal_pdf(), content_type="application/pdf")


def organisation_for(user, **fields) -> Organisation:
    defaults = {
        "legal_name": "Aurora AI Oy",
        "country": "FI",
        "registration_id": "FI12345678",
        "staff_headcount": 12,
        "annual_turnover_eur": 800_000,
        "balance_sheet_eur": 1_200_000,
    }
    return organisation_create(user=user, **{**defaults, **fields})


def complete_fields(*, start: date | None = None, **overrides) -> dict:
    """Answers for every section of a complete application below the GPAI threshold."""
    start = start or timezone.localdate() + timedelta(days=14)
    fields = {
        "title": "Finnish legal language model",
        "abstract": "A 7B model for Finnish and Swedish legal text.",
        "domain": Application.Domain.LANGUAGE,
        "civilian_use_confirmed": True,
        "results_openness": Application.Openness.OPEN,
        "weights_openness": Application.Openness.OPEN,
        "eu_market": True,
        "model_name": "aurora-legal-7b",
        "modality": Application.Modality.TEXT,
        "training_kind": Application.TrainingKind.FROM_SCRATCH,
        "parameters": 7_000_000_000,
        "training_tokens": 200_000_000_000,
        "start_date": start,
        "duration_months": 3,
        "pi_name": "Aino Virtanen",
        "pi_email": "aino@aurora-ai.example",
        "pi_contract_end": start + timedelta(days=400),
        "team_size": 6,
        "hpc_experience": "Trained 1B models on 64 A100 GPUs with Slurm and PyTorch FSDP.",
        "ethics": {
            key: {"answer": key == "civilian_purpose", "explanation": ""}
            for key in rules.ETHICS_KEYS
        },
        "commitments": ["code_of_practice"],
    }
    fields.update(overrides)
    return fields


def fast_lane(call: Call) -> AccessMode:
    return call.access_modes.get(kind=AccessMode.Kind.FAST_LANE)


def application_for(
    user,
    call: Call,
    *,
    organisation: Organisation | None = None,
    kind: str = AccessMode.Kind.FAST_LANE,
    complete: bool = True,
    gpu_hours: int = 20_000,
    **overrides,
) -> Application:
    organisation = organisation or organisation_for(user)
    mode = call.access_modes.get(kind=kind)
    application = application_create(user=user, organisation=organisation, access_mode=mode)
    if complete:
        partition = Partition.objects.get(cluster__name="leonardo")
        application_save_draft(
            application=application,
            actor=user,
            fields=complete_fields(**overrides),
            resources={partition.pk: gpu_hours},
            annex=pdf_upload(),
        )
    return application
