"""Applicant pages: usage of an allocation or a declared model, charts, jobs, Annex XI summary.

Only members of the allocation's organisation and staff allowed to view allocations see them;
anyone else gets 404, so the pages do not reveal which allocations exist.
"""

from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
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
from core.pagination import CountedPaginator
from systems.estimates import significant, use_projection
from systems.models import ThresholdPolicy
from systems.selectors import policy_utilisation
from usage import charts
from usage.models import UsageRecord
from usage.selectors import (
    SeriesPoint,
    UsageTotals,
    allocations_usage,
    usage_jobs,
    usage_overview,
    usage_totals,
)

JOBS_PER_PAGE = 50


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


def _charts(
    scope: Scope, policy: ThresholdPolicy | None, totals: UsageTotals, series: list[SeriesPoint]
) -> dict:
    today = timezone.localdate()
    first = min([a.start for a in scope.allocations] + [p.day for p in series[:1]])
    last = max([a.end for a in scope.allocations] + [p.day for p in series[-1:]])
    projection = use_projection(
        used=totals.gpu_hours,
        granted=float(scope.granted_gpu_hours),
        start=min(a.start for a in scope.allocations),
        end=max(a.end for a in scope.allocations),
        today=today,
    )
    common = {"series": series, "first": first, "last": last, "today": today}
    return {
        "has_usage": bool(series),
        "projection": projection,
        "hours": charts.hours_chart(
            **common, granted=float(scope.granted_gpu_hours), projection=projection
        ),
        "compute": charts.compute_chart(
            **common,
            projection=projection,
            gpai_flop=policy.gpai_flop if policy else 1e23,
            systemic_risk_flop=policy.systemic_risk_flop if policy else 1e25,
        ),
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
    overview = usage_overview(records=scope.records, utilisation=policy_utilisation(policy))
    totals = overview.totals
    jobs = CountedPaginator(
        usage_jobs(records=scope.records), JOBS_PER_PAGE, count=totals.jobs
    ).get_page(request.GET.get("page"))
    return render(
        request,
        "usage/usage.html",
        {
            "scope": scope,
            "totals": totals,
            "granted": scope.granted_gpu_hours,
            "chart": _charts(scope, policy, totals, overview.series),
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
