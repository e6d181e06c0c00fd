"""The call manager's ranking page per call and access mode, and decisions taken from it."""

from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404, redirect, render

from core.pagination import page_of
from systems.models import AccessMode, AccessModePartition, Call
from systems.selectors import access_modes_by_size
from vetting.models import Application
from vetting.selectors import review as review_selectors
from vetting.services import review as workflow
from vetting.services.transitions import TransitionError

PERMISSION = "vetting.add_decision"
ROWS_PER_PAGE = 100


def _require_decider(request) -> None:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied("Only call managers rank and decide.")


@staff_member_required
def ranking_index(request):
    _require_decider(request)
    calls = Call.objects.prefetch_related(
        Prefetch("access_modes", queryset=access_modes_by_size())
    ).order_by("-opens_at")
    return render(
        request,
        "vetting/ranking_index.html",
        {**admin.site.each_context(request), "calls": calls, "title": "Ranking"},
    )


def _grants_from(post, application_id: int, partition_ids) -> dict[int, int]:
    grants = {}
    for pid in partition_ids:
        text = (post.get(f"grant_{application_id}_{pid}") or "").replace(",", "").strip()
        if text:
            try:
                grants[pid] = int(text)
            except ValueError as exc:
                raise ValidationError(f"“{text}” is not a whole number of GPU-hours.") from exc
    return grants


def _decide(request, access_mode: AccessMode) -> None:
    action = request.POST.get("decision")
    reason = request.POST.get("reason", "")
    ids = [int(pk) for pk in request.POST.getlist("selected") if pk.isdigit()]
    if action not in ("approve", "reject", "waitlist") or not ids:
        messages.error(request, "Select applications and a decision.")
        return
    partition_ids = list(
        AccessModePartition.objects.filter(access_mode=access_mode).values_list(
            "partition_id", flat=True
        )
    )
    done = 0
    for application in Application.objects.filter(pk__in=ids, access_mode=access_mode):
        try:
            if action == "approve":
                workflow.application_approve(
                    application=application,
                    actor=request.user,
                    reason=reason,
                    grants=_grants_from(request.POST, application.pk, partition_ids),
                )
            elif action == "reject":
                workflow.application_reject(
                    application=application, actor=request.user, reason=reason
                )
            else:
                workflow.application_waitlist(
                    application=application, actor=request.user, reason=reason
                )
        except (TransitionError, ValidationError) as error:
            text = "; ".join(error.messages) if isinstance(error, ValidationError) else error
            messages.error(request, f"{application}: {text}")
        else:
            done += 1
    if done:
        messages.success(request, f"{done} application(s): {action} recorded.")


@staff_member_required
def ranking(request, mode_id: int):
    _require_decider(request)
    access_mode = get_object_or_404(AccessMode.objects.select_related("call"), pk=mode_id)
    if request.method == "POST":
        _decide(request, access_mode)
        return redirect(request.get_full_path())
    rows, remaining, left = review_selectors.ranking(access_mode)
    # The capacity table sums every row; the table shows one page of them.
    page = page_of(rows, request.GET.get("page"), per_page=ROWS_PER_PAGE)
    review_selectors.ranking_flags_load(page.object_list)
    links = list(
        AccessModePartition.objects.filter(access_mode=access_mode).select_related(
            "partition__cluster"
        )
    )
    requested_totals = {
        link.partition_id: sum(row.requested.get(link.partition_id, 0) for row in rows)
        for link in links
    }
    capacity = [
        {
            "partition": link.partition,
            "capacity": link.capacity_gpu_hours,
            "remaining": remaining.get(link.partition_id, 0),
            "requested": requested_totals[link.partition_id],
            "after_proposals": left.get(link.partition_id, 0),
        }
        for link in links
    ]
    # Columns only for the partitions someone asked for: the others would be all dashes.
    requested_links = [link for link in links if requested_totals[link.partition_id]]
    table = [
        {
            "row": row,
            "decidable": row.application.can_decide,
            "cells": [
                {
                    "partition_id": link.partition_id,
                    "partition": link.partition,
                    "requested": row.requested.get(link.partition_id, 0),
                    "proposed": row.proposal.proposed.get(link.partition_id, 0),
                }
                for link in requested_links
            ],
        }
        for row in page
    ]
    return render(
        request,
        "vetting/ranking.html",
        {
            **admin.site.each_context(request),
            "title": f"Ranking: {access_mode}",
            "access_mode": access_mode,
            "partitions": [link.partition for link in requested_links],
            "capacity": capacity,
            "table": table,
            "decidable": any(item["decidable"] for item in table),
            "page": page,
        },
    )
