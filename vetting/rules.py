"""The rules of a complete application, as pure functions over plain data.

The web form and the API both hand the same plain dictionary to `validate_for_submit`, so a
founder gets the same words whichever way they apply. Nothing here touches the database.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from systems.estimates import BELOW_GPAI, GPAI, SYSTEMIC_RISK, PartitionFigures

# Horizon Europe ethics self-assessment (categories) and its security section
# (docs/domain-rules.md).
# `explain_if` is the answer that needs an explanation: for the civilian-purpose question it is
# "no", for every other question "yes".
ETHICS_QUESTIONS: tuple[tuple[str, str, bool], ...] = (
    ("human_embryos", "Does the project involve human embryos or foetuses?", True),
    ("humans", "Does the project involve people as research participants?", True),
    ("human_cells", "Does the project use human cells or tissues?", True),
    ("personal_data", "Does the project process personal data (including in training data)?", True),
    ("animals", "Does the project involve animals?", True),
    ("non_eu_countries", "Does the project involve countries outside the EU?", True),
    (
        "environment_health_safety",
        "Could the project harm the environment, health or safety?",
        True,
    ),
    (
        "artificial_intelligence",
        "Does the project develop, deploy or use AI in a way that raises ethical concerns "
        "(e.g. decisions about people, biometric data, manipulation)?",
        True,
    ),
    ("other", "Are there other ethics issues reviewers should know about?", True),
    ("misuse", "Could the results be misused to harm people (e.g. for crime or terrorism)?", True),
    ("dual_use", "Does the project involve dual-use items or technology?", True),
    ("civilian_purpose", "Does the project have an exclusively civilian purpose?", False),
)
ETHICS_KEYS = tuple(key for key, _, _ in ETHICS_QUESTIONS)
# Short names, so that a list of problems says which explanation is missing.
ETHICS_TOPICS = {
    "human_embryos": "human embryos",
    "humans": "research participants",
    "human_cells": "human cells",
    "personal_data": "personal data",
    "animals": "animals",
    "non_eu_countries": "non-EU countries",
    "environment_health_safety": "environment, health and safety",
    "artificial_intelligence": "use of AI",
    "other": "other issues",
    "misuse": "misuse",
    "dual_use": "dual use",
    "civilian_purpose": "civilian purpose",
}

# AI Act commitments an applicant can make (docs/domain-rules.md).
COMMITMENTS: tuple[tuple[str, str], ...] = (
    ("annex_xi", "Keep Annex XI technical documentation (incl. compute and energy)"),
    ("annex_xii", "Provide Annex XII documentation to downstream providers"),
    ("copyright_policy", "Adopt a copyright policy that honours text-and-data-mining opt-outs"),
    ("training_summary", "Publish a summary of the training content"),
    ("code_of_practice", "Sign the GPAI Code of Practice"),
    ("ai_pact", "Make the AI Pact core pledges (governance, high-risk mapping, AI literacy)"),
    ("art52_notification", "Notify the Commission within two weeks (Art. 52)"),
    ("evaluations", "Evaluate the model, including adversarial testing (Art. 55)"),
    ("incident_reporting", "Track and report serious incidents (Art. 55)"),
    ("cybersecurity", "Protect the model and its infrastructure (Art. 55 cybersecurity)"),
)
COMMITMENT_LABELS = dict(COMMITMENTS)

# Art. 53 obligations of every GPAI provider, and Art. 55 on top for systemic risk. The Code of
# Practice and the AI Pact are voluntary at every size.
GPAI_COMMITMENTS = ("annex_xi", "annex_xii", "copyright_policy", "training_summary")
SYSTEMIC_RISK_COMMITMENTS = (
    *GPAI_COMMITMENTS,
    "art52_notification",
    "evaluations",
    "incident_reporting",
    "cybersecurity",
)

CLASSIFICATION_LABELS = {
    BELOW_GPAI: "below the GPAI threshold",
    GPAI: "a general-purpose AI model",
    SYSTEMIC_RISK: "a general-purpose AI model with systemic risk",
}

ANNEX_MAX_BYTES = 10 * 1024 * 1024


def required_commitments(
    *, classification: str, is_modification: bool, modification_makes_provider: bool | None
) -> tuple[str, ...]:
    """The AI Act commitments an application must make, from where its compute sits.

    Below the GPAI threshold nothing is required. A modification that stays under the
    one-third rule (guidelines C(2025) 5045) leaves the obligations with the original provider,
    so it requires nothing either, whatever the cumulative classification.
    """
    if is_modification and not modification_makes_provider:
        return ()
    if classification == SYSTEMIC_RISK:
        return SYSTEMIC_RISK_COMMITMENTS
    if classification == GPAI:
        return GPAI_COMMITMENTS
    return ()


def combined_partition(rows: Sequence[tuple[PartitionFigures, float]]) -> PartitionFigures | None:
    """One equivalent partition for GPU-hours spread over several partitions.

    Compute, IT energy, facility energy and emissions are all linear in GPU-hours, so weighting
    peak and power by hours, PUE by energy and grid intensity by facility energy gives exactly
    the sums of the per-partition estimates for the total hours. None when no hours are asked.
    """
    rows = [(p, h) for p, h in rows if h > 0]
    hours = sum(h for _, h in rows)
    if not rows:
        return None
    it_energy = sum(h * p.power_watts for p, h in rows)
    facility = sum(h * p.power_watts * p.pue for p, h in rows)
    return PartitionFigures(
        peak_flops=sum(h * p.peak_flops for p, h in rows) / hours,
        power_watts=it_energy / hours,
        pue=max(1.0, facility / it_energy),
        grid_kg_per_kwh=sum(h * p.power_watts * p.pue * p.grid_kg_per_kwh for p, h in rows)
        / facility,
    )


@dataclass(frozen=True)
class ModeLimits:
    """What the chosen access mode allows."""

    name: str
    min_gpu_hours: int
    max_gpu_hours: int | None
    durations_months: tuple[int, ...]
    partition_ids: frozenset[int]
    partition_names: Mapping[int, str] = field(default_factory=dict)


def add_months(start: date, months: int) -> date:
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    days_in_month = [31, 29 if _leap(year) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    return date(year, month, min(start.day, days_in_month[month - 1]))


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _months_label(months: Sequence[int]) -> str:
    ordered = sorted(months)
    if len(ordered) == 1:
        return f"{ordered[0]} months"
    return ", ".join(str(m) for m in ordered[:-1]) + f" or {ordered[-1]} months"


REQUIRED_TEXT = {
    "title": "Give the project a title.",
    "abstract": "Describe the project in a few sentences.",
    "domain": "Choose the field the project belongs to.",
    "results_openness": "Say whether the results will be published.",
    "weights_openness": "Say whether the model weights will be released.",
    "model_name": "Name the model you will train; it ties your allocations together.",
    "modality": "Choose what the model takes in and produces.",
    "training_kind": "Say whether you train from scratch, continue pre-training or fine-tune.",
    "start_date": "Choose when you want to start.",
    "duration_months": "Choose how many months you need.",
    "pi_name": "Name the principal investigator (PI).",
    "pi_email": "Give the PI's e-mail address.",
    "pi_contract_end": "Give the date the PI's contract ends.",
    "hpc_experience": "Tell the reviewers about the team's experience with GPU clusters.",
}


def validate_for_submit(
    data: Mapping,
    *,
    mode: ModeLimits,
    required: Sequence[str],
    classification: str,
    today: date,
) -> dict[str, list[str]]:
    """Everything that must hold before an application can be submitted.

    `data` holds the application's fields by name, plus `resources` ({partition id: GPU-hours}),
    `ethics` ({question key: {"answer": bool | None, "explanation": str}}), `commitments` (keys),
    `has_annex`, `unparsed` ({field: text that could not be read}) and `call_is_open`.
    Returns {field: [messages]}; nested fields are named `resources.<partition id>`,
    `ethics.<key>.answer` and `ethics.<key>.explanation`; "__all__" is the whole application.
    """
    errors: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    for name, text in (data.get("unparsed") or {}).items():
        add(name, f"We could not read “{text}”. Write a plain number, e.g. 7000000000 or 7e9.")
    if not data.get("call_is_open", True):
        add("__all__", "This call is closed; applications can no longer be submitted to it.")

    for name, message in REQUIRED_TEXT.items():
        value = data.get(name)
        if (value is None or (isinstance(value, str) and not value.strip())) and name not in errors:
            add(name, message)

    # Project
    if not data.get("civilian_use_confirmed"):
        add(
            "civilian_use_confirmed",
            "EuroHPC computing time may only be used for civilian purposes (Regulation "
            "2021/1173, art. 16). Tick the box to confirm the project is exclusively civilian.",
        )
    if data.get("eu_market") is None:
        add("eu_market", "Say whether the model will be placed on the EU market.")

    # Model plan
    for name, what in (("parameters", "parameters"), ("training_tokens", "training tokens")):
        value = data.get(name)
        if name in errors:
            continue
        if value is None:
            add(name, f"Give the number of {what} (an estimate is fine).")
        elif value <= 0:
            add(name, f"The number of {what} must be greater than 0.")
    if data.get("training_kind") in ("fine_tuning", "continued_pretraining"):
        if not (data.get("base_model") or "").strip():
            add("base_model", "Name the model you start from (e.g. Llama 3.1 8B).")
        base_flop = data.get("base_model_flop")
        if base_flop is not None and base_flop <= 0 and "base_model_flop" not in errors:
            add(
                "base_model_flop",
                "The base model's training compute must be greater than 0; leave it empty "
                "if it is not known.",
            )
    synthetic = data.get("synthetic_data_flop")
    if synthetic is not None and synthetic < 0 and "synthetic_data_flop" not in errors:
        add("synthetic_data_flop", "Synthetic-data compute cannot be negative.")

    # Resources
    resources: Mapping[int, int] = data.get("resources") or {}
    for partition_id, hours in resources.items():
        name = f"resources.{partition_id}"
        if partition_id not in mode.partition_ids:
            add(name, f"{mode.name} cannot grant time on this system; remove the request.")
        elif hours is not None and hours < 0:
            add(name, "GPU-hours cannot be negative.")
    total = sum(h for h in resources.values() if h and h > 0)
    if total == 0 and not any(k.startswith("resources.") for k in errors):
        add("resources", "Request GPU-hours on at least one system.")
    elif total and total < mode.min_gpu_hours:
        add(
            "resources",
            f"{mode.name} starts at {mode.min_gpu_hours:,} GPU-hours in total; you asked for "
            f"{total:,}. Ask for more or choose a smaller access mode.",
        )
    elif mode.max_gpu_hours is not None and total > mode.max_gpu_hours:
        add(
            "resources",
            f"{mode.name} allows up to {mode.max_gpu_hours:,} GPU-hours in total; you asked for "
            f"{total:,}. Ask for less or choose a larger access mode.",
        )
    start = data.get("start_date")
    if start is not None and start < today:
        add("start_date", "The start date is in the past; choose today or a later date.")
    duration = data.get("duration_months")
    if duration is not None and duration not in mode.durations_months:
        add(
            "duration_months",
            f"{mode.name} allocations last {_months_label(mode.durations_months)}.",
        )
    utilisation = data.get("expected_utilisation")
    if (
        utilisation is not None
        and "expected_utilisation" not in errors
        and not 0 < utilisation <= 1
    ):
        add(
            "expected_utilisation",
            "Give the expected utilisation as a share of peak between 0 and 1, e.g. 0.4 for 40 %.",
        )

    # Team
    team_size = data.get("team_size")
    if team_size is None:
        add("team_size", "Say how many people work on the project.")
    elif team_size < 1:
        add("team_size", "The team has at least one person.")
    contract_end = data.get("pi_contract_end")
    if contract_end and start and duration in mode.durations_months:
        needed = add_months(add_months(start, duration), 3)
        if contract_end < needed:
            add(
                "pi_contract_end",
                "The PI's contract must run at least 3 months past the end of the allocation, "
                f"that is until {needed:%d %B %Y} or later. Name a PI whose contract does.",
            )

    # Ethics self-assessment
    ethics: Mapping[str, Mapping] = data.get("ethics") or {}
    for key, _question, explain_if in ETHICS_QUESTIONS:
        answer = (ethics.get(key) or {}).get("answer")
        explanation = ((ethics.get(key) or {}).get("explanation") or "").strip()
        if answer is None:
            add(f"ethics.{key}.answer", "Answer yes or no.")
        elif answer is explain_if and not explanation:
            word = "yes" if explain_if else "no"
            add(
                f"ethics.{key}.explanation",
                f"You answered {word}: explain what is involved and how you handle it.",
            )

    # AI Act commitments
    missing = [key for key in required if key not in (data.get("commitments") or ())]
    if missing:
        add(
            "commitments",
            f"Your planned compute makes the model {CLASSIFICATION_LABELS[classification]}, "
            "so these commitments are required: "
            + "; ".join(COMMITMENT_LABELS[key] for key in missing)
            + ".",
        )

    if not data.get("has_annex"):
        add("technical_annex", "Attach the technical annex as a PDF of at most 10 MB.")
    return errors


def pdf_problem(head: bytes, tail: bytes, size: int) -> str | None:
    """Why a file is not an acceptable technical annex, judged by its bytes; None if it is.

    `head` and `tail` are the first and last few kilobytes. A PDF starts with "%PDF-1." or
    "%PDF-2.", has at least one indirect object and ends with a cross-reference pointer and
    "%%EOF" (ISO 32000); a renamed Word file or image fails all of that.
    """
    if size > ANNEX_MAX_BYTES:
        return (
            f"The file is {size / 1024 / 1024:.1f} MB; the technical annex may be at most 10 MB. "
            "Compress the images or shorten the annex."
        )
    if size == 0:
        return "The file is empty."
    not_pdf = (
        "This file is not a PDF. Export the annex as PDF (in most editors: File, Save as or "
        "Export, PDF) and attach that file."
    )
    if not re.match(rb"%PDF-[12]\.\d", head):
        return not_pdf
    if not re.search(rb"\d+\s+\d+\s+obj\b", head + tail) or b"%%EOF" not in tail[-1024:]:
        return "This PDF is damaged or incomplete. Save it again as PDF and attach the new file."
    if b"startxref" not in tail:
        return "This PDF is damaged or incomplete. Save it again as PDF and attach the new file."
    return None


def upload_problem(upload) -> str | None:
    """`pdf_problem` for an uploaded file object, reading only its first and last 4 KB."""
    size = upload.size
    upload.seek(0)
    head = upload.read(4096)
    upload.seek(max(0, size - 4096))
    tail = upload.read(4096)
    upload.seek(0)
    return pdf_problem(head, tail, size)
