from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from compliance.models import LargeRunEntry
from compliance.reports import annual_report
from compliance.selectors import register_csv

CHART_WIDTH = 560


@require_GET
@staff_member_required
@permission_required("compliance.view_largerunentry", raise_exception=True)
def annual_report_page(request):
    this_year = timezone.localdate().year
    try:
        year = int(request.GET.get("year", this_year))
    except ValueError:
        year = this_year
    if not 2000 <= year <= 2100:
        year = this_year
    anonymise = request.GET.get("anonymise") == "1"
    report = annual_report(year=year, anonymise=anonymise)
    data = report.as_dict() if report else None
    bars = []
    if data:
        peak = max((r["flop"] for r in data["by_system"]), default=0) or 1
        bars = [
            {**row, "width": round(CHART_WIDTH * row["flop"] / peak), "y": 28 * i}
            for i, row in enumerate(data["by_system"])
        ]
    return render(
        request,
        "compliance/annual_report.html",
        {
            "year": year,
            "years": range(this_year, this_year - 6, -1),
            "anonymise": anonymise,
            "report": data,
            "bars": bars,
            "chart_height": 28 * len(bars) + 4,
            "chart_width": CHART_WIDTH + 260,
        },
    )


@require_GET
@staff_member_required
@permission_required("compliance.view_largerunentry", raise_exception=True)
def register_csv_download(request):
    entries = LargeRunEntry.objects.select_related("policy").prefetch_related(
        "allocations__cluster"
    )
    response = HttpResponse(
        register_csv(entries.order_by("first_crossed_on", "scope", "subject")),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = 'attachment; filename="large-training-runs.csv"'
    return response
