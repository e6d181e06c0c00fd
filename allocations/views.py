"""Applicant pages: their organisations' allocations, cluster users and change requests.

Members see; owners manage. Anyone else gets 404, so an allocation's existence does not leak.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from allocations import selectors, services
from allocations.forms import ChangeRequestForm, ClusterUserForm
from allocations.models import Allocation
from core.pagination import page_of
from systems.models import ThresholdPolicy

ALLOCATIONS_PER_PAGE = 50


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
    page = page_of(
        selectors.allocation_ids_for_member(request.user),
        request.GET.get("page"),
        per_page=ALLOCATIONS_PER_PAGE,
    )
    allocations = (
        selectors.allocations_for_member(request.user)
        .filter(pk__in=list(page))
        .prefetch_related("users")
    )
    warn_from = selectors.use_warning_share(ThresholdPolicy.objects.in_force())
    rows = [(allocation, selectors.use_of(allocation)) for allocation in allocations]
    return render(
        request, "allocations/list.html", {"rows": rows, "page": page, "warn_from": warn_from}
    )


# An invalid form is kept in the session for the page it redirects to (post/redirect/get), so
# that a reload shows the page again instead of posting the form a second time.
_FORMS = {"user_form": ClusterUserForm, "change_form": ChangeRequestForm}
_ANCHORS = {"user_form": "users-title", "change_form": "changes-title"}


def _session_key(pk: int, name: str) -> str:
    return f"allocation-{pk}-{name}"


def _redirect_with_errors(request, pk: int, name: str, form) -> HttpResponseRedirect:
    """Keep what was typed and the errors the service added, then show them on the page."""
    request.session[_session_key(pk, name)] = {
        "data": {key: value for key, value in form.data.items() if key != "csrfmiddlewaretoken"},
        "errors": form.errors.get_json_data(),
    }
    return HttpResponseRedirect(f"{reverse('allocations:detail', args=[pk])}#{_ANCHORS[name]}")


def _form_from_session(request, pk: int, name: str):
    kept = request.session.pop(_session_key(pk, name), None)
    if kept is None:
        return None
    form = _FORMS[name](kept["data"])
    form.is_valid()
    for field, errors in kept["errors"].items():
        for error in errors:
            if error["message"] not in form.errors.get(field, []):
                form.add_error(None if field == "__all__" else field, error["message"])
    return form


@login_required
def allocation_detail(request, pk: int):
    allocation = _allocation(request, pk)
    manages = selectors.allocation_managed_by(request.user, allocation)
    user_form = _form_from_session(request, pk, "user_form")
    change_form = _form_from_session(request, pk, "change_form")
    context = {
        "allocation": allocation,
        "use": selectors.use_of(allocation),
        "warn_from": selectors.use_warning_share(ThresholdPolicy.objects.in_force()),
        "manages": manages,
        "user_form": user_form or (ClusterUserForm() if manages else None),
        "change_form": change_form or (ChangeRequestForm() if manages else None),
    }
    return render(request, "allocations/detail.html", context)


@login_required
def allocation_user_add(request, pk: int):
    if request.method != "POST":
        return redirect("allocations:detail", pk=pk)
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
    return _redirect_with_errors(request, pk, "user_form", form)


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
def change_request_create(request, pk: int):
    if request.method != "POST":
        return redirect("allocations:detail", pk=pk)
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
    return _redirect_with_errors(request, pk, "change_form", form)
