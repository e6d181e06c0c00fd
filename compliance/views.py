import secrets

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from compliance.confidential import channel_open, unseal_or_note
from compliance.footprint import RecordScope, footprint_daily
from compliance.forms import CaseKeyForm, CaseMessageForm, ReportForm
from compliance.models import LargeRunEntry, MisuseReport, ReportMessage
from compliance.reports import annual_report
from compliance.selectors import register_csv
from compliance.services import ReportClosedError, report_add, report_find, report_submit
from organisations.groups import organisation_groups_current

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
@permission_required("compliance.view_alert", raise_exception=True)
def footprint_page(request):
    """What each organisation group held at once on all systems: its peak over the period of
    its allocations (live, or ended in the last month, as the threshold check counts them) and,
    for the group asked for, its peak on each day."""
    now = timezone.now()
    groups = organisation_groups_current().subjects
    daily = footprint_daily(groups=groups, now=now, scope=RecordScope(today=now.date()))
    rows = sorted(
        (
            {
                "group": group,
                "gpus": max(d.gpus for d in days),
                "pflops": max(d.tflops for d in days) / 1000,
                "memory_gb": max(d.memory_gb for d in days),
                "systems": max(d.systems for d in days),
                "first": days[0].day,
                "last": days[-1].day,
            }
            for group, days in daily.items()
            if days
        ),
        key=lambda row: (-row["gpus"], row["group"]),
    )
    chosen = request.GET.get("group", "")
    days = [{**vars(d), "pflops": d.tflops / 1000} for d in reversed(daily.get(chosen, []))]
    return render(
        request,
        "compliance/footprint.html",
        {"rows": rows, "chosen": chosen if chosen in daily else "", "days": days},
    )


@require_GET
@staff_member_required
@permission_required("compliance.view_largerunentry", raise_exception=True)
def register_csv_download(request):
    entries = LargeRunEntry.objects.select_related("policy").prefetch_related(
        "allocations__cluster", "alerts"
    )
    response = HttpResponse(
        register_csv(entries.order_by("first_crossed_on", "scope", "subject")),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = 'attachment; filename="large-training-runs.csv"'
    return response


# Site-wide limits for the reporting pages, per clock hour: nothing about who sends is counted.
REPORTS_PER_HOUR = 60


WRONG_KEYS_PER_HOUR = 600


def _over_limit(name: str, limit: int) -> bool:
    """Count one more in this hour's site-wide counter; True once it passes `limit`."""
    key = f"reporting:{name}:{timezone.now():%Y%m%d%H}"
    cache.add(key, 0, timeout=2 * 60 * 60)
    try:
        return cache.incr(key) > limit
    except ValueError:  # the counter expired between add and incr
        return False


def _private(response: HttpResponse) -> HttpResponse:
    """Nothing of a report page is kept by the browser's cache or passed to another site as a
    referrer. ("no-referrer" would also blank the Origin of the page's own forms, which the
    CSRF check reads.)"""
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex"
    return response


def _closed(request) -> HttpResponse:
    return _private(render(request, "compliance/report/closed.html", status=503))


@never_cache
@require_http_methods(["GET", "POST"])
def report_page(request):
    """Anyone may report a suspected split run or other misuse, without an account or a name.

    The case key is shown once, in the answer to the form, and never put in an address.
    """
    if not channel_open():
        return _closed(request)
    if request.method == "POST":
        form = ReportForm(request.POST)
        if form.is_valid():
            if _over_limit("reports", REPORTS_PER_HOUR):
                return _private(render(request, "compliance/report/busy.html", status=429))
            try:
                submitted = report_submit(
                    category=form.cleaned_data["category"],
                    text=form.cleaned_data["text"],
                    form_token=form.cleaned_data["form_token"],
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                context = {"key": submitted.key, "report": submitted.report}
                return _private(render(request, "compliance/report/received.html", context))
    else:
        form = ReportForm(initial={"form_token": secrets.token_urlsafe(24)})
    return _private(render(request, "compliance/report/form.html", {"form": form}))


def _case_context(report: MisuseReport, key: str, form=None) -> dict:
    conversation = [
        {
            "mine": m.author == ReportMessage.Author.REPORTER,
            "written_on": m.written_on,
            "text": unseal_or_note(m.body_sealed),
        }
        for m in report.messages.all()
    ]
    return {
        "report": report,
        # not "messages": that name is the messages framework's in every template
        "conversation": conversation,
        "form": form or CaseMessageForm(initial={"case_key": key}),
        "closed": report.status == MisuseReport.Status.CLOSED,
    }


@never_cache
@require_http_methods(["GET", "POST"])
def report_case_page(request):
    """The reporter reads the replies and adds to the report with the case key, sent in the
    body of a form (never in the address); a wrong key shows nothing but that it is wrong."""
    if not channel_open():
        return _closed(request)
    if request.method != "POST":
        return _private(render(request, "compliance/report/case_key.html", {"form": CaseKeyForm()}))
    key = request.POST.get("case_key", "")
    report = report_find(key=key)
    if report is None:
        form = CaseKeyForm(request.POST)
        if form.is_valid():
            if _over_limit("wrong_keys", WRONG_KEYS_PER_HOUR):
                return _private(render(request, "compliance/report/busy.html", status=429))
            form.add_error("case_key", "No case has this key. Check it and try again.")
        return _private(render(request, "compliance/report/case_key.html", {"form": form}))
    added = False
    form = None
    if "text" in request.POST:
        form = CaseMessageForm(request.POST)
        if form.is_valid():
            try:
                report_add(report=report, text=form.cleaned_data["text"])
            except (ReportClosedError, ValidationError) as error:
                text = error.messages[0] if isinstance(error, ValidationError) else str(error)
                form.add_error("text", text)
            else:
                added, form = True, None
    context = {**_case_context(report, key, form), "added": added}
    return _private(render(request, "compliance/report/case.html", context))
