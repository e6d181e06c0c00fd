"""Applicant pages: usage of an allocation or a declared model, charts, jobs, Annex XI summary.

Only members of the allocation's organisation and staff allowed to view allocations see them;
anyone else gets 404, so the pages do not reveal which allocations exist.
"""

import math
from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from allocations.models import Allocation, model_key
from allocations.selectors import (
    allocations_for_member,
    allocations_visible_to,
    use_of,
    use_warning_share,
)
from systems.estimates import significant
from systems.models import ThresholdPolicy
from systems.selectors import policy_utilisation
from usage.models import UsageRecord
from usage.selectors import (
    UsageTotals,
    allocations_usage,
    usage_jobs,
    usage_series,
    usage_totals,
)

JOBS_PER_PAGE = 50
CHART_WIDTH, CHART_HEIGHT = 640, 220


@dataclass
class Scope:
    """What a page is about: one allocation, or a declared model across allocations."""

    title: str
    allocations: list[Allocation]
    records: QuerySet
    model_name: str = ""

    @property
    def granted_gpu_hours(self) -> int:
        return sum(a.gpu_hours for a in self.allocations)


def _visible_allocations(user) -> QuerySet:
    return allocations_visible_to(user).select_related("cluster__site")


def _allocation_scope(request, pk: int) -> Scope:
    allocation = _visible_allocations(request.user).filter(pk=pk).first()
    if allocation is None:
        raise Http404("No such allocation.")
    return Scope(
        title=f"{allocation.project} ({allocation.cluster.name}:{allocation.account})",
        allocations=[allocation],
        records=UsageRecord.objects.filter(allocation=allocation),
        model_name=allocation.model_name,
    )


def _model_scope(request, model_name: str) -> Scope:
    allocations = list(
        _visible_allocations(request.user)
        .filter(model_key=model_key(model_name))
        .order_by("id")
        .distinct()
    )
    if not model_name or not allocations:
        raise Http404("No such model.")
    return Scope(
        title=f"Model {model_name}",
        allocations=allocations,
        records=UsageRecord.objects.filter(allocation__in=[a.pk for a in allocations]),
        model_name=model_name,
    )


def _line(values: list[float], top: float, *, log: tuple[float, float] | None = None) -> str:
    """SVG polyline points for a cumulative series, on the chart's scale."""
    if not values:
        return ""
    step = CHART_WIDTH / max(len(values) - 1, 1)
    points = []
    for index, value in enumerate(values):
        if log:
            low, high = log
            share = (math.log10(max(value, 10**low)) - low) / (high - low)
        else:
            share = value / top if top else 0
        y = CHART_HEIGHT - min(max(share, 0), 1) * CHART_HEIGHT
        points.append(f"{index * step:.1f},{y:.1f}")
    return " ".join(points)


def _charts(scope: Scope, policy: ThresholdPolicy | None, totals: UsageTotals) -> dict:
    series = usage_series(records=scope.records, utilisation=totals.utilisation)
    hours = [p.gpu_hours for p in series]
    granted = scope.granted_gpu_hours
    top = max([granted, *hours, 1])
    gpai = policy.gpai_flop if policy else 1e23
    systemic = policy.systemic_risk_flop if policy else 1e25
    log = (15.0, math.log10(systemic) + 1)
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "first_day": series[0].day if series else None,
        "last_day": series[-1].day if series else None,
        "hours_line": _line(hours, top),
        "grant_y": CHART_HEIGHT - granted / top * CHART_HEIGHT,
        "top_hours": top,
        "flop_line": _line([p.flop_estimate for p in series], 0, log=log),
        "upper_line": _line([p.flop_upper_bound for p in series], 0, log=log),
        "gpai_y": _line([gpai], 0, log=log).split(",")[1] if series else 0,
        "systemic_y": _line([systemic], 0, log=log).split(",")[1] if series else 0,
        "gpai": gpai,
        "systemic": systemic,
    }


def _summary(scope: Scope, totals: UsageTotals, policy: ThresholdPolicy | None) -> dict:
    """The Annex XI 1.2(d)-(e) figures: compute (two significant figures), time, energy."""
    granted = scope.granted_gpu_hours
    return {
        "subject": scope.title,
        "model": scope.model_name or None,
        "allocations": [
            {
                "cluster": a.cluster.name,
                "partition": a.partition.name,
                "accelerator": a.partition.accelerator,
                "account": a.account,
                "granted_gpu_hours": a.gpu_hours,
            }
            for a in scope.allocations
        ],
        "generated_at": timezone.now().isoformat(),
        "method": (
            "Hardware-based: GPU-seconds from scheduler accounting x peak dense BF16 FLOP/s per "
            f"scheduler GPU x utilisation {totals.utilisation:g} (upper bound at 1.0); "
            "guidelines C(2025) 5045."
        ),
        "training_compute_flop": significant(totals.flop_estimate) if totals.flop_estimate else 0,
        "training_compute_upper_bound_flop": (
            significant(totals.flop_upper_bound) if totals.flop_upper_bound else 0
        ),
        "gpu_hours": totals.gpu_hours,
        "granted_gpu_hours": granted,
        "used_fraction": totals.gpu_hours / granted if granted else None,
        "training_time": {
            "first_start": totals.first_start.isoformat() if totals.first_start else None,
            "last_end": totals.last_end.isoformat() if totals.last_end else None,
            "jobs": totals.jobs,
            "running_jobs": totals.running_jobs,
        },
        "energy_kwh": totals.energy_kwh,
        "energy_source": totals.energy_source,
        "facility_energy_kwh": totals.facility_energy_kwh,
        "co2e_kg": totals.co2e_kg,
        "thresholds": {
            "policy": str(policy) if policy else None,
            "gpai_flop": policy.gpai_flop if policy else 1e23,
            "systemic_risk_flop": policy.systemic_risk_flop if policy else 1e25,
        },
    }


def _page(request, scope: Scope):
    policy = ThresholdPolicy.objects.in_force()
    totals = usage_totals(records=scope.records, utilisation=policy_utilisation(policy))
    jobs = Paginator(usage_jobs(records=scope.records), JOBS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "usage/usage.html",
        {
            "scope": scope,
            "totals": totals,
            "granted": scope.granted_gpu_hours,
            "used_percent": (
                100 * totals.gpu_hours / scope.granted_gpu_hours
                if scope.granted_gpu_hours
                else None
            ),
            "chart": _charts(scope, policy, totals),
            "jobs": jobs,
            "policy": policy,
        },
    )


def _annex(request, scope: Scope, as_json: bool):
    policy = ThresholdPolicy.objects.in_force()
    totals = usage_totals(records=scope.records, utilisation=policy_utilisation(policy))
    summary = _summary(scope, totals, policy)
    if as_json:
        return JsonResponse(summary)
    return render(request, "usage/annex_xi.html", {"scope": scope, "summary": summary})


@login_required
def usage_index(request):
    """Usage of each of the person's allocations, with compute and energy, one query each."""
    allocations = list(allocations_for_member(request.user))
    policy = ThresholdPolicy.objects.in_force()
    totals = allocations_usage(allocations=allocations, utilisation=policy_utilisation(policy))
    rows = [(a, use_of(a), totals[a.pk]) for a in allocations]
    return render(
        request,
        "usage/index.html",
        {"rows": rows, "warn_from": use_warning_share(policy), "policy": policy},
    )


@login_required
def allocation_usage(request, pk: int):
    return _page(request, _allocation_scope(request, pk))


@login_required
def model_usage(request, model_name: str):
    return _page(request, _model_scope(request, model_name))


@login_required
def allocation_annex_xi(request, pk: int, as_json: bool = False):
    return _annex(request, _allocation_scope(request, pk), as_json)


@login_required
def model_annex_xi(request, model_name: str, as_json: bool = False):
    return _annex(request, _model_scope(request, model_name), as_json)
