from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from organisations import selectors, services
from organisations.forms import InvitationForm, OrganisationForm
from organisations.models import Invitation


def _safe_next(request) -> str | None:
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return None


@login_required
def organisation_list(request):
    organisations = list(selectors.organisations_of(request.user))
    if len(organisations) == 1:
        return redirect("organisations:detail", pk=organisations[0].pk)
    return render(request, "organisations/list.html", {"organisations": organisations})


@login_required
def organisation_create_view(request):
    form = OrganisationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        organisation = services.organisation_create(user=request.user, **form.cleaned_data)
        messages.success(request, f"{organisation} is registered; you are its owner.")
        return redirect(
            _safe_next(request) or reverse("organisations:detail", args=[organisation.pk])
        )
    return render(
        request, "organisations/form.html", {"form": form, "next": _safe_next(request) or ""}
    )


def _detail_context(organisation, *, owner: bool, invitation_form=None) -> dict:
    return {
        "organisation": organisation,
        "is_owner": owner,
        "members": selectors.members_of(organisation),
        "invitations": selectors.pending_invitations(organisation) if owner else [],
        "invitation_form": (invitation_form or InvitationForm()) if owner else None,
    }


@login_required
def organisation_detail(request, pk: int):
    organisation = selectors.organisation_for_member(user=request.user, pk=pk)
    owner = selectors.is_owner(user=request.user, organisation=organisation)
    return render(request, "organisations/detail.html", _detail_context(organisation, owner=owner))


def _owned(request, pk: int):
    organisation = selectors.organisation_for_member(user=request.user, pk=pk)
    if not selectors.is_owner(user=request.user, organisation=organisation):
        raise PermissionDenied("Only owners of the organisation can do this.")
    return organisation


@login_required
def organisation_edit(request, pk: int):
    organisation = _owned(request, pk)
    form = OrganisationForm(
        request.POST or None,
        instance=organisation,
        identity_locked=services.organisation_identity_locked(organisation),
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.organisation_update(organisation=organisation, **form.cleaned_data)
        except services.OrganisationLocked as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "The organisation's details are saved.")
            return redirect("organisations:detail", pk=organisation.pk)
    return render(request, "organisations/form.html", {"form": form, "organisation": organisation})


@login_required
@require_POST
def invitation_create_view(request, pk: int):
    organisation = _owned(request, pk)
    form = InvitationForm(request.POST)
    if form.is_valid():
        try:
            invitation = services.invitation_send(
                organisation=organisation,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                invited_by=request.user,
                accept_url_for=lambda token: request.build_absolute_uri(
                    reverse("organisations:invitation", args=[token])
                ),
            )
        except services.InvitationError as exc:
            form.add_error("email", str(exc))
        else:
            messages.success(request, f"Invitation sent to {invitation.email}.")
            return redirect("organisations:detail", pk=organisation.pk)
    context = _detail_context(organisation, owner=True, invitation_form=form)
    return render(request, "organisations/detail.html", context)


@login_required
def invitation_accept_view(request, token: str):
    invitation = get_object_or_404(
        Invitation.objects.select_related("organisation", "invited_by"), token=token
    )
    problem = None
    if request.method == "POST":
        try:
            services.invitation_accept(invitation=invitation, user=request.user)
        except services.InvitationError as exc:
            problem = str(exc)
        else:
            messages.success(request, f"You are now a member of {invitation.organisation}.")
            return redirect("organisations:detail", pk=invitation.organisation_id)
    return render(
        request,
        "organisations/invitation.html",
        {
            "invitation": invitation,
            "problem": problem,
            "expired": services.invitation_is_expired(invitation),
        },
    )
