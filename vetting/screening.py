"""Automatic eligibility screening, as pure functions over plain data.

Each rule returns flags (code, blocking or warning, message). Blocking flags make the application
ineligible; warnings are shown to reviewers. The sources are the eligibility rules in
docs/domain-rules.md: EU Recommendation 2003/361 (SME), Regulation 2021/1173 art. 16 (civilian
use), guidelines C(2025) 5045 (estimates within 30 %) and the AI Act commitments of vetting.rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from core.formats import flop, percent
from systems.estimates import ESTIMATE_TOLERANCE, GPAI, SYSTEMIC_RISK, relative_gap
from vetting import rules

BLOCKING = "blocking"
WARNING = "warning"

# EU Recommendation 2003/361, art. 2: staff headcount and financial ceilings of an SME.
SME_MAX_STAFF = 250
SME_MAX_TURNOVER_EUR = Decimal(50_000_000)
SME_MAX_BALANCE_SHEET_EUR = Decimal(43_000_000)

# The PI must stay at least this long after the allocation ends (docs/domain-rules.md).
PI_MONTHS_AFTER_END = 3


# What a flag is called where its message does not fit (the ranking table); the message says why.
FLAG_LABELS = {
    "country_unknown": "Country unknown",
    "country_not_eligible": "Country not eligible",
    "not_sme": "Not an SME",
    "sme_unknown": "SME status unknown",
    "not_civilian": "Not confirmed civilian",
    "ethics_dual_use": "Dual-use concern",
    "ethics_misuse": "Misuse concern",
    "pi_contract_unchecked": "PI contract unchecked",
    "pi_contract_short": "PI contract too short",
    "partition_not_in_mode": "Partition not in the access mode",
    "request_outside_limits": "Request outside the mode's limits",
    "duration_not_offered": "Duration not offered",
    "estimate_gap": "Compute estimates disagree",
    "commitments_missing": "Commitments missing",
    "related_allocations": "Related allocations",
}


def flag_label(code: str) -> str:
    return FLAG_LABELS.get(code) or code.replace("_", " ").capitalize()


@dataclass(frozen=True)
class Flag:
    code: str
    severity: str
    message: str
    details: Mapping = field(default_factory=dict)

    @property
    def is_blocking(self) -> bool:
        return self.severity == BLOCKING


@dataclass(frozen=True)
class RelatedHolding:
    """Allocations of an organisation in the applicant's group (or of the applicant itself)."""

    organisation: str
    registration_id: str
    relation: str
    allocations: int
    gpu_hours: int
    projected_flop: float


@dataclass(frozen=True)
class ScreeningInput:
    country_code: str
    country_status: str | None  # organisations.Country.Status value; None: not in the table
    country_name: str
    staff_headcount: int | None
    annual_turnover_eur: Decimal | None
    balance_sheet_eur: Decimal | None
    civilian_use_confirmed: bool
    ethics: Mapping[str, Mapping]
    pi_contract_end: date | None
    start_date: date | None
    duration_months: int | None
    mode: rules.ModeLimits
    resources: Mapping[int, int]
    flop_hardware: float | None
    flop_architecture: float | None
    flop_best: float | None
    classification: str
    required_commitments: Sequence[str]
    commitments: Sequence[str]
    related: Sequence[RelatedHolding] = ()
    gpai_flop: float = 1e23
    systemic_risk_flop: float = 1e25


def is_sme(
    *, staff: int | None, turnover: Decimal | None, balance_sheet: Decimal | None
) -> bool | None:
    """Rec. 2003/361: fewer than 250 staff AND (turnover <= 50 M OR balance sheet <= 43 M).

    None when the figures given do not decide it.
    """
    if staff is not None and staff >= SME_MAX_STAFF:
        return False
    turnover_ok = None if turnover is None else Decimal(turnover) <= SME_MAX_TURNOVER_EUR
    balance_ok = (
        None if balance_sheet is None else Decimal(balance_sheet) <= SME_MAX_BALANCE_SHEET_EUR
    )
    if turnover_ok is False and balance_ok is False:
        return False
    if staff is None or not (turnover_ok or balance_ok):
        return None
    return True


def country_flags(data: ScreeningInput) -> list[Flag]:
    if data.country_status is None:
        return [
            Flag(
                "country_unknown",
                BLOCKING,
                f"The organisation's country ({data.country_code or 'none given'}) is not in "
                "the eligibility table; a call manager has to check it.",
            )
        ]
    if data.country_status == "other":
        return [
            Flag(
                "country_not_eligible",
                BLOCKING,
                f"{data.country_name} is neither an EU member state nor a Horizon Europe "
                "associated country.",
            )
        ]
    return []


def sme_flags(data: ScreeningInput) -> list[Flag]:
    verdict = is_sme(
        staff=data.staff_headcount,
        turnover=data.annual_turnover_eur,
        balance_sheet=data.balance_sheet_eur,
    )
    details = {
        "staff": data.staff_headcount,
        "turnover_eur": None if data.annual_turnover_eur is None else str(data.annual_turnover_eur),
        "balance_sheet_eur": None
        if data.balance_sheet_eur is None
        else str(data.balance_sheet_eur),
    }
    if verdict is False:
        return [
            Flag(
                "not_sme",
                BLOCKING,
                "The organisation is not an SME (Recommendation 2003/361: fewer than 250 staff "
                "and a turnover of at most EUR 50 M or a balance sheet of at most EUR 43 M).",
                details,
            )
        ]
    if verdict is None:
        return [
            Flag(
                "sme_unknown",
                WARNING,
                "The organisation's staff, turnover or balance sheet is missing, so the SME "
                "test could not be decided.",
                details,
            )
        ]
    return []


def civilian_flags(data: ScreeningInput) -> list[Flag]:
    flags = []
    civilian_answer = (data.ethics.get("civilian_purpose") or {}).get("answer")
    if not data.civilian_use_confirmed or civilian_answer is False:
        flags.append(
            Flag(
                "not_civilian",
                BLOCKING,
                "The project is not confirmed as exclusively civilian (Regulation 2021/1173, "
                "art. 16).",
            )
        )
    for key, label in (("dual_use", "dual-use"), ("misuse", "misuse")):
        if (data.ethics.get(key) or {}).get("answer") is True:
            flags.append(
                Flag(
                    f"ethics_{key}",
                    WARNING,
                    f"The applicant declares a {label} concern: "
                    f"{(data.ethics[key].get('explanation') or '').strip() or 'no explanation'}",
                )
            )
    return flags


def pi_contract_flags(data: ScreeningInput) -> list[Flag]:
    if data.start_date is None or data.duration_months is None:
        return [
            Flag(
                "pi_contract_unchecked",
                BLOCKING,
                "Without a start date and duration the PI's contract cannot be checked.",
            )
        ]
    needed = rules.add_months(
        rules.add_months(data.start_date, data.duration_months), PI_MONTHS_AFTER_END
    )
    if data.pi_contract_end is None or data.pi_contract_end < needed:
        given = f"{data.pi_contract_end:%d %B %Y}" if data.pi_contract_end else "no date"
        return [
            Flag(
                "pi_contract_short",
                BLOCKING,
                f"The PI's contract must run until {needed:%d %B %Y} (3 months past the "
                f"allocation end); the application gives {given}.",
            )
        ]
    return []


def request_flags(data: ScreeningInput) -> list[Flag]:
    flags = []
    mode = data.mode
    foreign = sorted(
        pid for pid, hours in data.resources.items() if hours and pid not in mode.partition_ids
    )
    if foreign:
        flags.append(
            Flag(
                "partition_not_in_mode",
                BLOCKING,
                f"{mode.name} cannot grant time on {len(foreign)} of the requested partitions.",
                {"partition_ids": foreign},
            )
        )
    total = sum(hours for hours in data.resources.values() if hours)
    if total < mode.min_gpu_hours or (
        mode.max_gpu_hours is not None and total > mode.max_gpu_hours
    ):
        limit = (
            f"{mode.min_gpu_hours:,} to {mode.max_gpu_hours:,}"
            if mode.max_gpu_hours is not None
            else f"at least {mode.min_gpu_hours:,}"
        )
        flags.append(
            Flag(
                "request_outside_limits",
                BLOCKING,
                f"{mode.name} grants {limit} GPU-hours; the application asks for {total:,}.",
                {"requested": total},
            )
        )
    if data.duration_months is not None and data.duration_months not in mode.durations_months:
        flags.append(
            Flag(
                "duration_not_offered",
                BLOCKING,
                f"{mode.name} does not offer {data.duration_months}-month allocations.",
            )
        )
    return flags


def estimate_gap_flags(data: ScreeningInput) -> list[Flag]:
    hardware, architecture = data.flop_hardware, data.flop_architecture
    if not hardware or not architecture:
        return []
    gap = relative_gap(hardware, architecture)
    if gap <= ESTIMATE_TOLERANCE:
        return []
    return [
        Flag(
            "estimate_gap",
            WARNING,
            f"The hardware estimate ({flop(hardware)} FLOP) and the architecture estimate "
            f"({flop(architecture)} FLOP) differ by {percent(gap)}, more than the 30 % the "
            "Commission "
            "guidelines accept: the request may not fit the plan.",
            {"relative_gap": gap},
        )
    ]


def commitment_flags(data: ScreeningInput) -> list[Flag]:
    missing = [key for key in data.required_commitments if key not in data.commitments]
    if not missing:
        return []
    return [
        Flag(
            "commitments_missing",
            WARNING,
            f"The planned compute makes the model "
            f"{rules.CLASSIFICATION_LABELS.get(data.classification, data.classification)}, but "
            "these AI Act commitments are missing: "
            + "; ".join(rules.COMMITMENT_LABELS.get(key, key) for key in missing)
            + ".",
            {"missing": missing},
        )
    ]


def related_flags(data: ScreeningInput) -> list[Flag]:
    """Splitting one training effort over related companies must not hide it
    (docs/domain-rules.md)."""
    holders = [h for h in data.related if h.allocations]
    if not holders:
        return []
    held = sum(h.projected_flop for h in holders)
    combined = held + (data.flop_best or 0.0)
    if combined >= data.systemic_risk_flop:
        combined_class, crossing = SYSTEMIC_RISK, "above the systemic-risk threshold"
    elif combined >= data.gpai_flop:
        combined_class, crossing = GPAI, "above the GPAI threshold"
    else:
        combined_class, crossing = data.classification, "below the GPAI threshold"
    names = "; ".join(
        f"{h.organisation} ({h.relation}, {h.allocations} allocation"
        f"{'s' if h.allocations != 1 else ''}, {h.gpu_hours:,} GPU-hours)"
        for h in holders
    )
    message = (
        f"Related organisations already hold allocations: {names}. With this request their "
        f"combined compute is {flop(combined)} FLOP, {crossing}."
    )
    if combined_class != data.classification:
        message += " Together they cross a threshold this application alone stays under."
    return [
        Flag(
            "related_allocations",
            WARNING,
            message,
            {
                "combined_flop": combined,
                "held_flop": held,
                "combined_classification": combined_class,
                "organisations": [
                    {
                        "name": h.organisation,
                        "registration_id": h.registration_id,
                        "relation": h.relation,
                        "allocations": h.allocations,
                        "gpu_hours": h.gpu_hours,
                        "projected_flop": h.projected_flop,
                    }
                    for h in holders
                ],
            },
        )
    ]


RULES = (
    country_flags,
    sme_flags,
    civilian_flags,
    pi_contract_flags,
    request_flags,
    estimate_gap_flags,
    commitment_flags,
    related_flags,
)


def screen(data: ScreeningInput) -> list[Flag]:
    """Every flag of every rule, blocking ones first."""
    flags = [flag for rule in RULES for flag in rule(data)]
    return sorted(flags, key=lambda f: (not f.is_blocking,))


def is_eligible(flags: Sequence[Flag]) -> bool:
    return not any(flag.is_blocking for flag in flags)
