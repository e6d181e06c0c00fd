"""Every change to an application goes through these functions; views, the API and the admin
call them and nothing else writes an application.

Each state transition is one function guarded by the current state: the row is locked and the
state re-checked inside the transaction, so two clicks or two tabs cannot both succeed.
"""

from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.files.uploadedfile import UploadedFile
from django.db import models, transaction
from django.utils import timezone

from organisations.models import Membership, Organisation
from systems.models import AccessMode, AccessModePartition, ThresholdPolicy
from vetting import rules
from vetting.models import DRAFT_FIELDS, Application, ApplicationResource
from vetting.selectors import intake as selectors
from vetting.services.transitions import (
    TransitionError,
    application_event_record,
    application_locked,
)


class ApplicationInvalid(Exception):
    """The application cannot be submitted yet; `errors` maps each field to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(m for messages in errors.values() for m in messages))


def _single_line(name: str, value: Any) -> Any:
    """A one-line field (title, names, e-mail) keeps no line breaks or runs of spaces: the title
    goes into e-mail subjects, where a line break makes the mail impossible to send."""
    field = Application._meta.get_field(name)
    if isinstance(value, str) and isinstance(field, models.CharField):
        return " ".join(value.split())
    return value


def application_create(
    *, user: AbstractBaseUser, organisation: Organisation, access_mode: AccessMode
) -> Application:
    """Start a draft for `organisation` under `access_mode`; `user` must be a member."""
    if not Membership.objects.filter(user=user, organisation=organisation).exists():
        raise PermissionError(f"You are not a member of {organisation}.")
    if not access_mode.call.is_open:
        raise TransitionError(f"The call “{access_mode.call}” is not open for applications.")
    with transaction.atomic():
        application = Application.objects.create(
            organisation=organisation,
            call=access_mode.call,
            access_mode=access_mode,
            created_by=user,
            pi_name=user.get_full_name(),
            pi_email=user.email,
        )
        application_event_record(
            application=application,
            from_state="",
            to_state=Application.State.DRAFT,
            actor=user,
            public_note="Draft started.",
        )
    return application


def application_save_draft(
    *,
    application: Application,
    actor: AbstractBaseUser,
    fields: Mapping[str, Any],
    resources: Mapping[int, int | None] | None = None,
    unparsed: Mapping[str, Mapping[str, str]] | None = None,
    access_mode: AccessMode | None = None,
    annex: UploadedFile | None = None,
) -> Application:
    """Store what the applicant has so far, complete or not.

    `fields` may be any subset of DRAFT_FIELDS. `resources` maps partition ids to GPU-hours
    (None or 0 removes the request). `unparsed` keeps text that could not be read, keyed by
    form field; fields given in `fields` or `resources` drop their old unparsed text.
    """
    unknown = set(fields) - set(DRAFT_FIELDS)
    if unknown:
        raise ValueError(f"Unknown application fields: {', '.join(sorted(unknown))}")
    if annex is not None:
        problem = rules.upload_problem(annex)
        if problem:
            raise ApplicationInvalid({"technical_annex": [problem]})
    with transaction.atomic():
        current = application_locked(application, [Application.State.DRAFT], "changed")
        if access_mode is not None:
            if access_mode.call_id != current.call_id:
                raise ApplicationInvalid(
                    {"access_mode": ["Choose an access mode of the same call."]}
                )
            current.access_mode = access_mode
        offered = frozenset(
            AccessModePartition.objects.filter(access_mode=current.access_mode_id).values_list(
                "partition_id", flat=True
            )
        )
        if resources is not None:
            foreign = [pid for pid, hours in resources.items() if hours and pid not in offered]
            if foreign:
                name = current.access_mode.get_kind_display()
                raise ApplicationInvalid(
                    {
                        f"resources.{pid}": [
                            f"{name} cannot grant time on this system; remove the request."
                        ]
                        for pid in foreign
                    }
                )
        for name, value in fields.items():
            setattr(current, name, _single_line(name, value))
        kept = dict(current.unparsed_input or {})
        for name in [*fields, *(f"resources_{pid}" for pid in resources or {})]:
            kept.pop(name, None)
        kept.update(unparsed or {})
        current.unparsed_input = kept
        replaced = current.technical_annex.name if annex is not None else ""
        if annex is not None:
            current.technical_annex.save("annex.pdf", annex, save=False)
            current.technical_annex_name = (annex.name or "annex.pdf").rsplit("/", 1)[-1][:200]
        current.save()
        _resources_store(current, resources or {}, offered)
        if replaced and replaced != current.technical_annex.name:
            storage = current.technical_annex.storage
            transaction.on_commit(lambda: storage.delete(replaced))
    _adopt(application, current)
    return application


def _adopt(application: Application, stored: Application) -> None:
    """Give the caller's `application` the state just written, as `refresh_from_db` would,
    without reading the row back."""
    for field in Application._meta.concrete_fields:
        value = getattr(stored, field.attname)
        if isinstance(field, models.FileField):
            value = value.name
        # Setting a key drops the related object cached for its old value.
        setattr(application, field.attname, value)
        if field.is_relation and field.is_cached(stored):
            field.set_cached_value(application, field.get_cached_value(stored))
    if hasattr(application, "_prefetched_objects_cache"):
        application._prefetched_objects_cache = {}


def _resources_store(
    application: Application, resources: Mapping[int, int | None], offered: frozenset[int]
) -> None:
    """Write the requested GPU-hours in two statements however many partitions there are: one
    delete (requests taken back, and partitions a mode change no longer offers) and one
    insert that updates the rows already there."""
    dropped = [pid for pid, hours in resources.items() if not hours]
    ApplicationResource.objects.filter(application=application).filter(
        ~models.Q(partition_id__in=offered) | models.Q(partition_id__in=dropped)
    ).delete()
    kept = [
        ApplicationResource(application=application, partition_id=pid, gpu_hours=hours)
        for pid, hours in resources.items()
        if hours
    ]
    if kept:
        ApplicationResource.objects.bulk_create(
            kept,
            update_conflicts=True,
            unique_fields=["application", "partition"],
            update_fields=["gpu_hours"],
        )


def application_submit(*, application: Application, actor: AbstractBaseUser) -> Application:
    """Submit a complete draft and freeze its compute estimate with the policy used."""
    today = timezone.localdate()
    with transaction.atomic():
        current = application_locked(application, [Application.State.DRAFT], "submitted")
        policy = ThresholdPolicy.objects.in_force(today)
        estimate = selectors.application_estimate(current, policy=policy)
        errors = selectors.application_submit_errors(current, today=today, estimate_=estimate)
        if errors:
            raise ApplicationInvalid(errors)
        now = timezone.now()
        total = estimate["total"]
        updated = Application.objects.filter(pk=current.pk, state=Application.State.DRAFT).update(
            state=Application.State.SUBMITTED,
            submitted_at=now,
            estimate_snapshot={**estimate, "computed_at": now.isoformat()},
            estimate_policy=policy,
            estimated_flop=total["flop_best"],
            compute_class=total["classification"],
            unparsed_input={},
            updated_at=now,
        )
        if not updated:
            raise TransitionError("This application was submitted in the meantime.")
        application_event_record(
            application=current,
            from_state=Application.State.DRAFT,
            to_state=Application.State.SUBMITTED,
            actor=actor,
            public_note="Application submitted.",
        )
        from core.tasks import publish
        from vetting.tasks import screening_enqueue, submission_receipt_notify

        transaction.on_commit(lambda: screening_enqueue(current.pk))
        transaction.on_commit(lambda: publish(submission_receipt_notify, current.pk))
    application.refresh_from_db()
    return application


def application_withdraw(
    *, application: Application, actor: AbstractBaseUser, reason: str = ""
) -> Application:
    """An owner of the organisation takes the application back, until a decision is taken."""
    if not selectors.application_owned_by(user=actor, application=application):
        raise PermissionError("Only owners of the organisation can withdraw its applications.")
    with transaction.atomic():
        current = application_locked(application, Application.WITHDRAWABLE_STATES, "withdrawn")
        Application.objects.filter(pk=current.pk, state=current.state).update(
            state=Application.State.WITHDRAWN, updated_at=timezone.now()
        )
        application_event_record(
            application=current,
            from_state=current.state,
            to_state=Application.State.WITHDRAWN,
            actor=actor,
            reason=reason,
            public_note="Withdrawn by the applicant." + (f" Reason: {reason}" if reason else ""),
        )
    application.refresh_from_db()
    return application
