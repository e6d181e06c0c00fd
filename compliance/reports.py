"""The governance officer's annual report: compute, energy and emissions per year."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from django.db.models import Count, Q, Sum

from allocations.models import Allocation
from compliance.models import Alert, MisuseReport
from compliance.thresholds import (
    FOOTPRINT_GPUS,
    MEMORY_LEVELS,
    PLAN_LEVELS,
    SPLIT_RUN_LEVELS,
    level_figure,
)
from systems.estimates import BELOW_GPAI, SECONDS_PER_HOUR, classify
from systems.models import ThresholdPolicy
from usage.models import UsageRecord
from usage.selectors import JOULES_PER_KWH, TERA, it_joules, peak_tflop_seconds

TOP_EFFORTS = 10


@dataclass
class Row:
    label: str
    gpu_hours: float = 0.0
    flop: float = 0.0
    energy_kwh: float = 0.0
    facility_kwh: float = 0.0
    co2e_kg: float = 0.0

    def add(self, other: "Row") -> None:
        self.gpu_hours += other.gpu_hours
        self.flop += other.flop
        self.energy_kwh += other.energy_kwh
        self.facility_kwh += other.facility_kwh
        self.co2e_kg += other.co2e_kg

    def as_dict(self) -> dict:
        return {
            "label": self.label,
            "gpu_hours": round(self.gpu_hours, 1),
            "flop": float(f"{self.flop:.2g}") if self.flop else 0.0,
            "energy_kwh": round(self.energy_kwh, 1),
            "facility_energy_kwh": round(self.facility_kwh, 1),
            "co2e_kg": round(self.co2e_kg, 1),
        }


@dataclass
class AnnualReport:
    year: int
    policy: ThresholdPolicy
    anonymised: bool
    total: Row
    by_system: list[Row]
    by_access_mode: list[Row]
    bands: dict[str, int]
    largest: list[dict] = field(default_factory=list)
    split_runs: dict = field(default_factory=dict)
    reports: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "year": self.year,
            "policy_version": self.policy.version,
            "utilisation": self.policy.default_utilisation,
            "anonymised": self.anonymised,
            "total": self.total.as_dict(),
            "by_system": [r.as_dict() for r in self.by_system],
            "by_access_mode": [r.as_dict() for r in self.by_access_mode],
            "efforts_per_band": self.bands,
            "largest_efforts": self.largest,
            "split_runs": self.split_runs,
            "confidential_reports": self.reports,
        }


def annual_report(*, year: int, anonymise: bool = False) -> AnnualReport | None:
    """Figures of the usage that started in ``year``, under the policy in force at its end.

    Compute is hardware-based (GPU-seconds x peak x policy utilisation); energy is measured where
    the scheduler reported it and estimated from partition power elsewhere.
    """
    policy = ThresholdPolicy.objects.in_force(date(year, 12, 31))
    if policy is None:
        return None
    utilisation = policy.default_utilisation
    in_year = Q(start__year=year) & Q(allocation__isnull=False)
    rows = (
        UsageRecord.objects.filter(in_year)
        .values(
            "allocation__cluster__name",
            "allocation__cluster__display_name",
            "allocation__access_mode__kind",
            "allocation__cluster__site__pue",
            "allocation__cluster__site__grid_kg_co2e_per_kwh",
        )
        .annotate(
            total_gpu_seconds=Sum("gpu_seconds"),
            peak_tflop_seconds=Sum(peak_tflop_seconds()),
            it_joules=Sum(it_joules()),
        )
        .order_by()
    )
    total = Row("All systems")
    systems: dict[str, Row] = {}
    modes: dict[str, Row] = {}
    for r in rows:
        it_kwh = (r["it_joules"] or 0.0) / JOULES_PER_KWH
        facility = it_kwh * float(r["allocation__cluster__site__pue"])
        row = Row(
            label="",
            gpu_hours=r["total_gpu_seconds"] / SECONDS_PER_HOUR,
            flop=(r["peak_tflop_seconds"] or 0.0) * TERA * utilisation,
            energy_kwh=it_kwh,
            facility_kwh=facility,
            co2e_kg=facility * float(r["allocation__cluster__site__grid_kg_co2e_per_kwh"]),
        )
        system = r["allocation__cluster__display_name"]
        mode = _mode_label(r["allocation__access_mode__kind"])
        systems.setdefault(system, Row(system)).add(row)
        modes.setdefault(mode, Row(mode)).add(row)
        total.add(row)
    bands, largest = _efforts(year=year, policy=policy, anonymise=anonymise)
    return AnnualReport(
        year=year,
        policy=policy,
        anonymised=anonymise,
        total=total,
        by_system=sorted(systems.values(), key=lambda r: -r.flop),
        by_access_mode=sorted(modes.values(), key=lambda r: -r.flop),
        bands=bands,
        largest=largest,
        split_runs=_split_runs(year=year, anonymise=anonymise),
        reports=_reports(year=year),
    )


def _mode_label(kind: str | None) -> str:
    from systems.models import AccessMode

    return AccessMode.Kind(kind).label if kind else "Imported or without a call"


def _efforts(*, year: int, policy: ThresholdPolicy, anonymise: bool):
    """Training efforts (declared models; an allocation without one stands alone) of the year."""
    utilisation = policy.default_utilisation
    per_allocation = (
        UsageRecord.objects.filter(start__year=year, allocation__isnull=False)
        .values("allocation")
        .annotate(flop=Sum(peak_tflop_seconds()))
        .order_by()
    )
    flop_by_allocation = {r["allocation"]: r["flop"] * TERA * utilisation for r in per_allocation}
    allocations = Allocation.objects.filter(pk__in=flop_by_allocation).select_related(
        "organisation", "cluster"
    )
    efforts: dict[str, dict] = defaultdict(
        lambda: {"flop": 0.0, "organisations": set(), "systems": set()}
    )
    for allocation in allocations:
        key = allocation.model_key or f"{allocation.cluster.name}:{allocation.account}"
        effort = efforts[key]
        effort["flop"] += flop_by_allocation[allocation.pk]
        effort["organisations"].add(allocation.organisation.legal_name)
        effort["systems"].add(allocation.cluster.name)
    figures = policy.figures()
    bands = {BELOW_GPAI: 0, "gpai": 0, "systemic_risk": 0}
    for effort in efforts.values():
        bands[classify(effort["flop"], figures)] += 1
    ranked = sorted(efforts.items(), key=lambda kv: (-kv[1]["flop"], kv[0]))[:TOP_EFFORTS]
    largest = []
    aliases: dict[str, str] = {}
    for rank, (name, effort) in enumerate(ranked, start=1):
        organisations = sorted(effort["organisations"])
        if anonymise:
            name = f"Effort {rank}"
            organisations = [
                aliases.setdefault(o, f"Organisation {_letters(len(aliases))}")
                for o in organisations
            ]
        largest.append(
            {
                "rank": rank,
                "effort": name,
                "organisations": organisations,
                "systems": sorted(effort["systems"]),
                "flop": float(f"{effort['flop']:.2g}"),
                "classification": classify(effort["flop"], figures),
            }
        )
    return bands, largest


def _split_runs(*, year: int, anonymise: bool) -> dict:
    """The year's alerts of split runs: concurrent footprints, memory levels and plans against
    accounting, each with what it was read from, and whether the register cites it."""
    alerts = (
        Alert.objects.filter(level__in=SPLIT_RUN_LEVELS, raised_at__year=year)
        .annotate(citations=Count("register_entries"))
        .order_by("raised_at", "pk")
    )
    rows, aliases = [], {}
    for alert in alerts:
        subject = alert.subject
        if anonymise:
            kind = {"organisation": "Group", "model": "Model"}.get(alert.scope, "Allocation")
            subject = aliases.setdefault(
                (alert.scope, alert.subject_key), f"{kind} {_letters(len(aliases))}"
            )
        rows.append(
            {
                "level": alert.level,
                "scope": alert.scope,
                "subject": subject,
                "value": level_figure(alert.level, alert.value),
                "threshold": level_figure(alert.level, alert.threshold),
                "raised_on": alert.raised_at.date().isoformat(),
                "cited_in_register": alert.citations > 0,
            }
        )
    return {
        "footprint_alerts": sum(1 for r in rows if r["level"] == FOOTPRINT_GPUS),
        "memory_alerts": sum(1 for r in rows if r["level"] in MEMORY_LEVELS),
        "plan_deviations": sum(1 for r in rows if r["level"] in PLAN_LEVELS),
        "alerts": rows,
    }


def _reports(*, year: int) -> dict:
    """How many confidential reports came in and how they were handled: counts only, never
    what they say or whom they concern."""
    received = MisuseReport.objects.filter(received_on__year=year)
    counts = received.aggregate(
        received=Count("pk"),
        closed=Count("pk", filter=Q(status=MisuseReport.Status.CLOSED)),
    )
    on_time = sum(
        1
        for received_on, acknowledged_on in received.values_list("received_on", "acknowledged_on")
        if acknowledged_on is not None
        and (acknowledged_on - received_on).days <= MisuseReport.ACKNOWLEDGE_DAYS
    )
    return {**counts, "acknowledged_within_7_days": on_time}


def _letters(n: int) -> str:
    letters = ""
    n += 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return letters
