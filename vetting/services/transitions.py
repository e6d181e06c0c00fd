"""What every application transition shares: the guard under a row lock and the audit event.

Intake (vetting.services.intake) and review (vetting.services.review) move applications only
through these two, so each transition is guarded and recorded the same way.
"""

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser

from core.errors import TransitionError as BaseTransitionError
from vetting.models import Application, ApplicationEvent


class TransitionError(BaseTransitionError):
    """The application is not in a state that allows this; the message says why."""


def application_event_record(
    *,
    application: Application,
    from_state: str,
    to_state: str,
    actor: AbstractBaseUser | None,
    reason: str = "",
    public_note: str = "",
) -> ApplicationEvent:
    return ApplicationEvent.objects.create(
        application=application,
        from_state=from_state,
        to_state=to_state,
        actor=actor,
        reason=reason,
        public_note=public_note,
    )


def application_locked(application: Application, allowed: Iterable[str], doing: str) -> Application:
    """Re-read the application under a row lock and check that `doing` is allowed now."""
    current = Application.objects.select_for_update().get(pk=application.pk)
    if current.state not in allowed:
        raise TransitionError(
            f"This application is {current.get_state_display().lower()}, so it cannot be {doing}."
        )
    return current
