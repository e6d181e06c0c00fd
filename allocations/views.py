"""Applicant pages: their organisations' allocations, cluster users and change requests.

Members see; owners manage. Anyone else gets 404, so an allocation's existence does not leak.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from allocations import selectors, services
from allocations.forms import ChangeRequestForm, ClusterUserForm
from allocations.models import Allocation
from systems.models import ThresholdPolicy


def _allocation(request, pk: int) -> Allocation:
    try:
        return selectors.allocation_detail_for_member(request.user, pk)
    except Allocation.DoesNotExist:
        raise Http404("No such allocation.") from None


def _managed(request, pk: int) -> Allocation:
    allocation = _allocation(request, pk)
    if not selectors.allocation_managed_by(request.user, allocation):
        raise PermissionDenied("Only owners of the organisation can do this.")
    return allocation


def _error_text(error: Exception) -> str:
    return " ".join(error.messages) if isinstance(error, ValidationError) else str(error)


@login_required
def allocation_list(request):
    allocations = selectors.allocations_for_member(request.user).prefetch_related("users")
    warn_from = selectors.use_warning_share(ThresholdPolicy.objects.in_force())
    rows = [(allocation, selectors.use_of(allocation)) for allocation in allocations]
    return render(request, "allocations/list.html", {"rows": rows, "warn_from": warn_from})


@login_required
def allocation_detail(request, pk: int, *, user_form=None, change_form=None):
    allocation = _allocation(request, pk)
    manages = selectors.allocation_managed_by(request.user, allocation)
    context = {
        "allocation": allocation,
        "use": selectors.use_of(allocation),
        "warn_from": selectors.use_warning_share(ThresholdPolicy.objects.in_force()),
        "manages": manages,
        "user_form": user_form or (ClusterUserForm() if manages else None),
        "change_form": change_form or (ChangeRequestForm() if manages else None),
    }
    status = 400 if (user_form or change_form) else 200
    return render(request, "allocations/detail.html", context, status=status)


@login_required
@require_POST
def allocation_user_add(request, pk: int):
    allocation = _managed(request, pk)
    form = ClusterUserForm(request.POST)
    if form.is_valid():
        username = form.cleaned_data["username"]
        try:
            services.allocation_user_add(
                allocation=allocation, username=username, actor=request.user
            )
        except (ValidationError, services.TransitionError) as error:
            form.add_error("username", _error_text(error))
        else:
            messages.success(request, f"{username} can now use {allocation.account}.")
            return redirect("allocations:detail", pk=pk)
    return allocation_detail(request, pk, user_form=form)


@login_required
@require_POST
def allocation_user_remove(request, pk: int):
    allocation = _managed(request, pk)
    username = request.POST.get("username", "")
    try:
        services.allocation_user_remove(
            allocation=allocation, username=username, actor=request.user
        )
    except (ValidationError, services.TransitionError) as error:
        messages.error(request, _error_text(error))
    else:
        messages.success(
            request,
            f"{username} is removed from {allocation.account}; the change reaches the "
            "scheduler with the next export.",
        )
    return redirect("allocations:detail", pk=pk)


@login_required
@require_POST
def change_request_create(request, pk: int):
    allocation = _managed(request, pk)
    form = ChangeRequestForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.change_request_submit(
                allocation=allocation,
                kind=data["kind"],
                justification=data["justification"],
                requested_by=request.user,
                extra_gpu_hours=data["extra_gpu_hours"] or 0,
                new_end=data["new_end"],
            )
        except (ValidationError, services.TransitionError) as error:
            form.add_error(None, _error_text(error))
        else:
            messages.success(request, "Your request is with the call manager.")
            return redirect("allocations:detail", pk=pk)
    return allocation_detail(request, pk, change_form=form)
