from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from organisations.models import Country, Invitation, Membership, Organisation


def organisations_of(user: AbstractBaseUser) -> QuerySet[Organisation]:
    if not user.is_authenticated:
        return Organisation.objects.none()
    return Organisation.objects.filter(membership__user=user).order_by("legal_name")


def organisation_for_member(*, user: AbstractBaseUser, pk: int) -> Organisation:
    """The organisation if `user` belongs to it; 404 otherwise, so outsiders learn nothing."""
    return get_object_or_404(organisations_of(user), pk=pk)


def membership_role(*, user: AbstractBaseUser, organisation: Organisation) -> str | None:
    return (
        Membership.objects.filter(user=user, organisation=organisation)
        .values_list("role", flat=True)
        .first()
    )


def is_owner(*, user: AbstractBaseUser, organisation: Organisation) -> bool:
    return membership_role(user=user, organisation=organisation) == Membership.Role.OWNER


def members_of(organisation: Organisation) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(organisation=organisation)
        .select_related("user")
        .order_by("-role", "user__email")
    )


def pending_invitations(organisation: Organisation) -> QuerySet[Invitation]:
    return organisation.invitations.filter(accepted_at__isnull=True)


def country_choices() -> list[tuple[str, str]]:
    """Eligible countries first (EU, EEA, associated), then the others, each by name."""
    rows = Country.objects.order_by("name").values_list("code", "name", "status")
    eligible = [(code, name) for code, name, status in rows if status != Country.Status.OTHER]
    other = [(code, name) for code, name, status in rows if status == Country.Status.OTHER]
    return [("Eligible countries", eligible), ("Other countries (not eligible)", other)]
