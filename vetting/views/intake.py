from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from core.pagination import page_of
from organisations.selectors import organisations_of
from vetting import rules
from vetting.forms import ApplicationForm, StartApplicationForm
from vetting.models import Application
from vetting.selectors import intake as selectors
from vetting.services import intake as services

APPLICATIONS_PER_PAGE = 25


@login_required
def apply(request):
    """Start an application: choose the organisation and the access mode."""
    organisations = organisations_of(request.user)
    if not organisations.exists():
        messages.info(request, "Register your organisation first; then you can apply.")
        return redirect(f"{reverse('organisations:create')}?next={reverse('vetting:apply')}")
    modes = selectors.open_access_modes()
    form = StartApplicationForm(
        request.POST or None, organisations=organisations, access_modes=modes
    )
    if request.method == "POST" and form.is_valid():
        try:
            application = services.application_create(
                user=request.user,
                organisation=form.cleaned_data["organisation"],
                access_mode=form.cleaned_data["access_mode"],
            )
        except services.TransitionError as exc:
            form.add_error("access_mode", str(exc))
        else:
            return redirect("vetting:edit", pk=application.pk)
    drafts = selectors.applications_visible_to(request.user).filter(state=Application.State.DRAFT)
    return render(
        request,
        "vetting/apply.html",
        {"form": form, "drafts": drafts, "has_modes": modes.exists()},
    )


@login_required
def application_list(request):
    applications = page_of(
        selectors.applications_visible_to(request.user),
        request.GET.get("page"),
        per_page=APPLICATIONS_PER_PAGE,
    )
    return render(request, "vetting/list.html", {"applications": applications})


@login_required
def application_detail(request, pk: int):
    application = selectors.application_for_member(user=request.user, pk=pk)
    resources = application.resources.select_related("partition__cluster")
    estimate = application.estimate_snapshot or selectors.application_estimate(application)
    return render(
        request,
        "vetting/detail.html",
        {
            "application": application,
            "resources": resources,
            "estimate": estimate,
            "history": selectors.application_public_history(application),
            "allocations": selectors.application_allocations(application),
            "ethics": selectors.ethics_rows(application),
            "commitments": selectors.commitment_labels(application.commitments),
        },
    )


@login_required
def application_edit(request, pk: int):
    application = selectors.application_for_member(user=request.user, pk=pk)
    if not application.is_draft:
        messages.info(request, "A submitted application can no longer be changed.")
        return redirect("vetting:detail", pk=application.pk)
    if request.method != "POST":
        form = ApplicationForm(application=application)
        return _render_form(request, application, form)

    form = ApplicationForm(request.POST, request.FILES, application=application)
    form.is_valid()
    values = form.draft_values()
    try:
        # Saved first, whatever the outcome of a submit: nothing typed is lost.
        application = services.application_save_draft(
            application=application, actor=request.user, **values
        )
    except services.ApplicationInvalid as exc:
        form.add_submit_errors(exc.errors)
        return _render_form(request, application, form)
    except services.TransitionError as exc:
        messages.error(request, str(exc))
        return redirect("vetting:detail", pk=application.pk)

    if "submit" in request.POST:
        try:
            services.application_submit(application=application, actor=request.user)
        except services.ApplicationInvalid as exc:
            form.add_submit_errors(exc.errors)
            messages.warning(
                request,
                "Your draft is saved, but it cannot be submitted yet: fix the points marked below.",
            )
            return _render_form(request, application, form, status=200)
        except services.TransitionError as exc:
            messages.error(request, str(exc))
            return redirect("vetting:detail", pk=application.pk)
        messages.success(request, "Your application is submitted. You can follow it here.")
        return redirect("vetting:detail", pk=application.pk)

    if form.errors:
        messages.warning(
            request, "Your draft is saved. Some entries could not be read; they are marked below."
        )
        return _render_form(request, application, form)
    messages.success(request, "Draft saved.")
    return redirect("vetting:edit", pk=application.pk)


def _render_form(request, application: Application, form: ApplicationForm, status: int = 200):
    estimate = selectors.application_estimate(application)
    required = set(estimate["required_commitments"])
    return render(
        request,
        "vetting/form.html",
        {
            "application": application,
            "form": form,
            "estimate": estimate,
            "required_commitments": [label for key, label in rules.COMMITMENTS if key in required],
            "classification_label": rules.CLASSIFICATION_LABELS.get(estimate["classification"]),
        },
        status=status,
    )


@login_required
def application_withdraw_view(request, pk: int):
    application = selectors.application_for_member(user=request.user, pk=pk)
    if not selectors.application_owned_by(user=request.user, application=application):
        raise PermissionDenied("Only owners of the organisation can withdraw its applications.")
    if request.method == "POST":
        try:
            services.application_withdraw(
                application=application,
                actor=request.user,
                reason=request.POST.get("reason", "").strip()[:2000],
            )
        except services.TransitionError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "The application is withdrawn.")
        return redirect("vetting:detail", pk=application.pk)
    return render(request, "vetting/withdraw.html", {"application": application})


@login_required
def annex_download(request, pk: int):
    """The technical annex, for members of the organisation and for staff who may view it."""
    if request.user.is_staff and request.user.has_perm("vetting.view_application"):
        application = get_object_or_404(Application, pk=pk)
    else:
        application = selectors.application_for_member(user=request.user, pk=pk)
    return annex_response(application)


def annex_response(application: Application) -> FileResponse:
    """The application's technical annex as a PDF download; 404 when there is none."""
    if not application.technical_annex:
        raise Http404("No technical annex.")
    return FileResponse(
        application.technical_annex.open("rb"),
        as_attachment=True,
        filename=application.technical_annex_name or "technical-annex.pdf",
        content_type="application/pdf",
    )
