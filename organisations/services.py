from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.mail import one_line
from organisations.models import Invitation, Membership, Organisation

INVITATION_VALID_FOR = timedelta(days=14)

ORGANISATION_FIELDS = (
    "legal_name",
    "country",
    "registration_id",
    "founding_date",
    "staff_headcount",
    "annual_turnover_eur",
    "balance_sheet_eur",
    "website",
    "controlled_by_registration_id",
    "beneficial_owners",
)


class InvitationError(Exception):
    """An invitation cannot be sent or accepted; the message says why, for a person."""


def organisation_create(*, user: AbstractBaseUser, **fields) -> Organisation:
    """Create an organisation with `user` as its owner."""
    unknown = set(fields) - set(ORGANISATION_FIELDS)
    if unknown:
        raise TypeError(f"Unknown organisation fields: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        organisation = Organisation.objects.create(**fields)
        Membership.objects.create(organisation=organisation, user=user, role=Membership.Role.OWNER)
    return organisation


# Who the organisation is: what eligibility, the SME test and the grouping of compute across
# related companies rest on. Vetted with the first submission, then changed by a call manager.
IDENTITY_FIELDS = ("legal_name", "country", "registration_id", "controlled_by_registration_id")
IDENTITY_LOCKED = (
    "Fixed since the organisation's first submitted application; the call manager can change it."
)


class OrganisationLocked(ValueError):
    pass


def organisation_identity_locked(organisation: Organisation) -> bool:
    return (
        organisation.allocations.exists()
        or organisation.applications.exclude(state="draft").exists()
    )


def organisation_update(*, organisation: Organisation, **fields) -> Organisation:
    """The owners' edit. Once the identity is locked, the identity fields cannot change here."""
    unknown = set(fields) - set(ORGANISATION_FIELDS)
    if unknown:
        raise TypeError(f"Unknown organisation fields: {', '.join(sorted(unknown))}")
    # compared with the stored row: a bound model form has already set the new values
    stored = Organisation.objects.filter(pk=organisation.pk).values(*IDENTITY_FIELDS).get()
    changed = [name for name in IDENTITY_FIELDS if name in fields and fields[name] != stored[name]]
    if changed and organisation_identity_locked(organisation):
        raise OrganisationLocked(f"{', '.join(changed)}: {IDENTITY_LOCKED}")
    for name, value in fields.items():
        setattr(organisation, name, value)
    organisation.save()
    return organisation


def invitation_send(
    *,
    organisation: Organisation,
    email: str,
    invited_by: AbstractBaseUser,
    accept_url_for,
    role: str = Membership.Role.MEMBER,
) -> Invitation:
    """Invite `email` to join; `accept_url_for(token)` builds the absolute link for the mail."""
    email = email.strip().lower()
    if Membership.objects.filter(organisation=organisation, user__email__iexact=email).exists():
        raise InvitationError(f"{email} is already a member of {organisation}.")
    invitation = Invitation.objects.create(
        organisation=organisation, email=email, role=role, invited_by=invited_by
    )
    inviter = invited_by.get_full_name() or invited_by.email or invited_by.get_username()
    link = accept_url_for(invitation.token)
    transaction.on_commit(
        lambda: send_mail(
            subject=one_line(
                f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}Join {organisation} on hpcgate"
            ),
            message=(
                f"{inviter} invites you to join {organisation} on hpcgate, where European AI "
                f"startups apply for GPU time on public supercomputers.\n\n"
                f"Accept the invitation (log in or sign up with {email} first):\n{link}\n\n"
                f"The link is valid for {INVITATION_VALID_FOR.days} days."
            ),
            from_email=None,
            recipient_list=[email],
        )
    )
    return invitation


def invitation_is_expired(invitation: Invitation) -> bool:
    return invitation.created_at + INVITATION_VALID_FOR < timezone.now()


def invitation_accept(*, invitation: Invitation, user: AbstractBaseUser) -> Membership:
    """Make `user` a member, if they have verified the e-mail address the invitation went to."""
    from allauth.account.models import EmailAddress

    if invitation.accepted_at is not None:
        raise InvitationError("This invitation has already been used.")
    if invitation_is_expired(invitation):
        raise InvitationError(
            "This invitation has expired. Ask the owner of the organisation for a new one."
        )
    if not EmailAddress.objects.filter(
        user=user, email__iexact=invitation.email, verified=True
    ).exists():
        raise InvitationError(
            f"This invitation was sent to {invitation.email}. Log in with that address, or add "
            "and verify it under your account's e-mail settings, then open the link again."
        )
    with transaction.atomic():
        # The conditional update makes a double click or a second tab a harmless no-op.
        claimed = Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True).update(
            accepted_at=timezone.now(), accepted_by=user
        )
        if not claimed:
            raise InvitationError("This invitation has already been used.")
        try:
            with transaction.atomic():
                membership = Membership.objects.create(
                    organisation=invitation.organisation, user=user, role=invitation.role
                )
        except IntegrityError:
            membership = Membership.objects.get(organisation=invitation.organisation, user=user)
    invitation.refresh_from_db()
    return membership
