"""Signs of one training run split over several allocations, systems or related companies, as
alerts for the threshold check (docs/domain-rules.md, "Split training runs"):

- `footprint_gpus`, `footprint_memory`: an organisation group held more than the policy's
  scheduler GPUs (or accelerator memory) at once, on at least its minimum number of systems,
  for longer than its minimum hours (compliance.footprint);
- `job_memory`: one job held more accelerator memory than the policy allows a single job
  without a look;
- `plan_overrun`: the allocations of a granted plan used more compute than the plan declared
  (times the policy's factor) before their end date;
- `model_above_plan`: a declared model's compute on all systems exceeds its largest single
  declared plan times the policy's factor.

Each function returns unsaved `Alert` candidates; the check keeps those never raised before.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from functools import partial
from typing import TYPE_CHECKING

from django.db.models import F
from django.db.models.functions import Coalesce

from allocations.models import Allocation
from compliance.footprint import (
    GPUS,
    MEMORY,
    RecordScope,
    Stretch,
    footprint_daily,
    footprint_jobs,
    footprint_stretches,
)
from compliance.models import Alert, Scope
from compliance.thresholds import (
    FOOTPRINT_GPUS,
    FOOTPRINT_MEMORY,
    JOB_MEMORY,
    MODEL_ABOVE_PLAN,
    PLAN_OVERRUN,
)
from systems.models import ThresholdPolicy
from usage.models import UsageRecord

if TYPE_CHECKING:
    from compliance.monitoring import Effort


def split_run_candidates(
    *,
    policy: ThresholdPolicy,
    allocations: list[Allocation],
    model_efforts: list[Effort],
    group_efforts: list[Effort],
    today: date,
    now: datetime,
) -> list[Alert]:
    """Every split-run level each subject reaches now. `allocations` carry their used compute
    and the GPU-seconds their jobs held up to `now` (compliance.monitoring.allocation_figures
    with the same `now`)."""
    scope = RecordScope(today=today)
    return [
        *footprint_candidates(policy=policy, group_efforts=group_efforts, scope=scope, now=now),
        *job_memory_candidates(policy=policy, allocations=allocations, scope=scope),
        *plan_overrun_candidates(policy=policy, allocations=allocations, today=today),
        *model_above_plan_candidates(policy=policy, model_efforts=model_efforts),
    ]


def footprint_candidates(
    *, policy: ThresholdPolicy, group_efforts: list[Effort], scope: RecordScope, now: datetime
) -> list[Alert]:
    """The groups that held more than a footprint level; the efforts' allocations carry the
    GPU-seconds their jobs held up to `now` (compliance.monitoring.allocation_figures)."""
    efforts = {effort.subject_key: effort for effort in group_efforts}
    groups = {
        allocation.organisation_id: effort.subject_key
        for effort in group_efforts
        for allocation in effort.allocations
    }
    held: dict[int, float] = defaultdict(float)
    for effort in group_efforts:
        for allocation in effort.allocations:
            held[allocation.organisation_id] += allocation.held_gpu_seconds
    level_names = {GPUS: FOOTPRINT_GPUS, MEMORY: FOOTPRINT_MEMORY}
    levels = {
        measure: above
        for measure, above in ((GPUS, policy.footprint_gpus), (MEMORY, policy.footprint_memory_gb))
        if above is not None
    }
    found = footprint_stretches(
        groups=groups,
        levels=levels,
        min_systems=policy.footprint_min_systems,
        min_hours=policy.footprint_min_hours,
        now=now,
        scope=scope,
        systems={a.cluster_id for effort in group_efforts for a in effort.allocations},
        held_gpu_seconds=held,
    )
    candidates = []
    for measure, stretches in sorted(found.items(), key=lambda item: level_names[item[0]]):
        for subject, stretch in sorted(stretches.items()):
            effort = efforts[subject]
            candidates.append(
                Alert.candidate(
                    policy=policy,
                    level=level_names[measure],
                    threshold=float(levels[measure]),
                    scope=Scope.ORGANISATION,
                    subject=effort.subject,
                    subject_key=effort.subject_key,
                    value=float(stretch.peak(measure)),
                    concerned=effort.allocations,
                    evidence_source=partial(
                        footprint_evidence,
                        stretch=stretch,
                        organisation_ids={a.organisation_id for a in effort.allocations},
                        policy=policy,
                        scope=scope,
                        now=now,
                    ),
                )
            )
    return candidates


def footprint_evidence(
    *,
    stretch: Stretch,
    organisation_ids: set[int],
    policy: ThresholdPolicy,
    scope: RecordScope,
    now: datetime,
) -> dict:
    """The stretch, the jobs that overlapped in it (largest first) and its peak per day."""
    jobs, total, systems = footprint_jobs(
        organisation_ids=organisation_ids, start=stretch.start, end=stretch.end, scope=scope
    )
    days = footprint_daily(
        groups=dict.fromkeys(organisation_ids, stretch.group),
        now=now,
        scope=RecordScope(
            today=scope.today,
            recent_days=scope.recent_days,
            since=stretch.start,
            until=stretch.end,
        ),
    ).get(stretch.group, [])
    return {
        "kind": "footprint",
        "from": stretch.start.isoformat(),
        "to": stretch.end.isoformat(),
        "hours": round(stretch.hours, 1),
        "peak_gpus": stretch.peak_gpus,
        "peak_pflops": round(stretch.peak_tflops / 1000, 1),
        "peak_memory_gb": round(stretch.peak_memory_gb),
        "peak_systems": stretch.peak_systems,
        "min_systems": policy.footprint_min_systems,
        "min_hours": policy.footprint_min_hours,
        "systems": systems,
        "organisations": sorted({job["organisation"] for job in jobs}),
        "jobs_total": total,
        "jobs": jobs,
        "daily": [
            {
                "day": day.day.isoformat(),
                "gpus": day.gpus,
                "pflops": round(day.tflops / 1000, 1),
                "memory_gb": round(day.memory_gb),
                "systems": day.systems,
            }
            for day in days
        ],
    }


def _job_memory_gb():
    """Per usage record: its GPUs x the memory of one GPU of the partition it ran on (its
    allocation's partition when it names none), like peak FLOP/s (usage.selectors)."""
    return F("gpus") * Coalesce(
        F("partition__memory_gb_per_gpu"), F("allocation__partition__memory_gb_per_gpu")
    )


def job_memory_candidates(
    *, policy: ThresholdPolicy, allocations: list[Allocation], scope: RecordScope
) -> list[Alert]:
    """The allocations in scope whose largest job by accelerator memory is above the policy's
    level; `allocations` carry `largest_job_memory_gb` (compliance.monitoring)."""
    if policy.job_memory_gb is None:
        return []
    largest = {
        allocation.pk: allocation.largest_job_memory_gb
        for allocation in allocations
        if allocation.largest_job_memory_gb is not None
        and allocation.largest_job_memory_gb > policy.job_memory_gb
        and scope.covers(allocation)
    }
    candidates = []
    for allocation in allocations:
        if allocation.pk not in largest:
            continue
        memory = float(largest[allocation.pk])
        candidates.append(
            Alert.candidate(
                policy=policy,
                level=JOB_MEMORY,
                threshold=float(policy.job_memory_gb),
                scope=Scope.ALLOCATION,
                subject=allocation.account,
                subject_key=f"{allocation.cluster.name}:{allocation.account}",
                value=memory,
                concerned=[allocation],
                allocation=allocation,
                evidence_source=partial(job_memory_evidence, allocation=allocation, memory=memory),
            )
        )
    return candidates


def job_memory_evidence(*, allocation: Allocation, memory: float) -> dict:
    record = (
        UsageRecord.objects.filter(allocation=allocation, gpus__gt=0)
        .annotate(memory_gb=_job_memory_gb())
        .filter(memory_gb__gte=memory)
        .select_related("cluster", "partition")
        .order_by("start", "pk")
        .first()
    )
    if record is None:
        return {"kind": "job_memory", "memory_gb": memory}
    partition = record.partition or allocation.partition
    return {
        "kind": "job_memory",
        "memory_gb": memory,
        "jobs": [
            {
                "system": record.cluster.name,
                "account": record.account,
                "job_id": record.job_id,
                "organisation": allocation.organisation.legal_name,
                "partition": partition.name,
                "gpus": record.gpus,
                "memory_gb": memory,
                "start": record.start.isoformat() if record.start else None,
                "end": record.end.isoformat() if record.end else None,
            }
        ],
    }


def _plan_allocation(allocation: Allocation) -> dict:
    return {
        "allocation": f"{allocation.cluster.name}:{allocation.account}",
        "organisation": allocation.organisation.legal_name,
        "end": allocation.end.isoformat(),
        "used_flop": float(f"{allocation.used_flop:.2g}"),
    }


def plan_overrun_candidates(
    *, policy: ThresholdPolicy, allocations: list[Allocation], today: date
) -> list[Alert]:
    """Plans whose allocations together used more than the declared compute x the policy's
    factor; raised on each of them still running (live and not past its end date)."""
    factor = policy.plan_overrun_factor
    if not factor:
        return []
    plans: dict[str, list[Allocation]] = defaultdict(list)
    for allocation in allocations:
        if allocation.plan_reference and allocation.planned_flop:
            plans[allocation.plan_reference].append(allocation)
    candidates = []
    for reference, members in sorted(plans.items()):
        declared = members[0].planned_flop
        used = sum(a.used_flop for a in members)
        threshold = declared * factor
        if used <= threshold:
            continue
        evidence = {
            "kind": "plan",
            "plan": reference,
            "declared_flop": declared,
            "declared_hardware_flop": members[0].planned_hardware_flop,
            "declared_parameters": members[0].planned_parameters,
            "declared_tokens": members[0].planned_tokens,
            "factor": factor,
            "used_flop": float(f"{used:.2g}"),
            "allocations": [_plan_allocation(a) for a in members],
        }
        for allocation in members:
            if allocation.state not in Allocation.LIVE_STATES or allocation.end < today:
                continue
            candidates.append(
                Alert.candidate(
                    policy=policy,
                    level=PLAN_OVERRUN,
                    threshold=threshold,
                    scope=Scope.ALLOCATION,
                    subject=allocation.account,
                    subject_key=f"{allocation.cluster.name}:{allocation.account}",
                    value=used,
                    concerned=[allocation],
                    allocation=allocation,
                    evidence=evidence,
                )
            )
    return candidates


def model_above_plan_candidates(
    *, policy: ThresholdPolicy, model_efforts: list[Effort]
) -> list[Alert]:
    """Declared models whose compute on all systems exceeds the largest single plan declaring
    them x the policy's factor, when some of that compute lies outside that plan (otherwise
    it is the plan's own overrun)."""
    factor = policy.model_declaration_factor
    if not factor:
        return []
    candidates = []
    for effort in model_efforts:
        declared = {a.plan_reference: a.planned_flop for a in effort.allocations if a.planned_flop}
        if not declared:
            continue
        largest_plan, largest = max(declared.items(), key=lambda item: (item[1], item[0]))
        if all(a.plan_reference == largest_plan for a in effort.allocations):
            continue
        threshold = largest * factor
        if effort.used_flop <= threshold:
            continue
        per_system: dict[str, float] = defaultdict(float)
        for allocation in effort.allocations:
            per_system[allocation.cluster.name] += allocation.used_flop
        candidates.append(
            Alert.candidate(
                policy=policy,
                level=MODEL_ABOVE_PLAN,
                threshold=threshold,
                scope=Scope.MODEL,
                subject=effort.subject,
                subject_key=effort.subject_key,
                value=effort.used_flop,
                concerned=effort.allocations,
                evidence={
                    "kind": "model",
                    "largest_plan": largest_plan,
                    "largest_declared_flop": largest,
                    "factor": factor,
                    "used_flop": float(f"{effort.used_flop:.2g}"),
                    "declarations": [
                        {"plan": reference, "declared_flop": flop}
                        for reference, flop in sorted(declared.items())
                    ],
                    "used_flop_per_system": {
                        system: float(f"{flop:.2g}") for system, flop in sorted(per_system.items())
                    },
                    "allocations": [_plan_allocation(a) for a in effort.allocations],
                },
            )
        )
    return candidates
