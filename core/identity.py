"""People who log in through an OpenID Connect provider: which claims hpcgate reads, which
staff roles a provider's entitlements grant, and the allauth adapter that applies both.

Nobody gets a staff role from a provider unless the site maps an entitlement to it
(``OIDC_<ID>_ENTITLEMENT_ROLES``). A mapping manages only the roles it names: at each log-in
through that provider they are added or removed to match the entitlements; roles given by hand,
or by another provider's mapping, stay as they are.
"""

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from allauth.account.models import EmailAddress
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.providers.base import AuthProcess
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from core import roles

logger = logging.getLogger(__name__)

ORCID = re.compile(r"(?:https?://orcid\.org/)?(\d{4}-\d{4}-\d{4}-\d{3}[\dX])", re.IGNORECASE)
ORCID_CLAIMS = ("orcid", "eduperson_orcid")
UNIQUE_ID_CLAIMS = ("voperson_id", "eduperson_unique_id")


def claims_merge(extra_data: Mapping) -> dict:
    """The claims allauth stored for a social account: the ID token's, overlaid by userinfo."""
    if "userinfo" in extra_data or "id_token" in extra_data:
        return {**(extra_data.get("id_token") or {}), **(extra_data.get("userinfo") or {})}
    return dict(extra_data)


def _values(claim) -> list[str]:
    if claim is None:
        return []
    if isinstance(claim, str):
        return [claim]
    if isinstance(claim, Iterable):
        return [str(value) for value in claim]
    return [str(claim)]


@dataclass(frozen=True)
class FederatedIdentity:
    subject: str
    orcid: str = ""
    unique_id: str = ""

    @property
    def orcid_url(self) -> str:
        return f"https://orcid.org/{self.orcid}" if self.orcid else ""


def identity_from_claims(claims: Mapping) -> FederatedIdentity:
    """ORCID iD (``orcid``, ``eduperson_orcid``; bare or as an orcid.org URL) and
    eduPersonUniqueId (``voperson_id``, ``eduperson_unique_id``) when the provider gives them."""
    orcid = ""
    for value in (v for name in ORCID_CLAIMS for v in _values(claims.get(name))):
        if match := ORCID.fullmatch(value.strip()):
            orcid = match.group(1).upper()
            break
    unique_id = next(
        (v.strip() for name in UNIQUE_ID_CLAIMS for v in _values(claims.get(name)) if v.strip()),
        "",
    )
    return FederatedIdentity(subject=str(claims.get("sub", "")), orcid=orcid, unique_id=unique_id)


@dataclass(frozen=True)
class RoleChange:
    add: frozenset[str]
    remove: frozenset[str]


def role_changes(
    *, entitlements: Iterable[str], role_map: Mapping[str, str], current: Iterable[str]
) -> RoleChange:
    """Which of the mapped roles to add and to remove so that they match the entitlements.
    Roles the map does not name are never touched."""
    managed = set(role_map.values())
    entitled = {role_map[e] for e in entitlements if e in role_map}
    held = set(current) & managed
    return RoleChange(add=frozenset(entitled - held), remove=frozenset(held - entitled))


def oidc_apps() -> list[dict]:
    return settings.SOCIALACCOUNT_PROVIDERS.get("openid_connect", {}).get("APPS", [])


def role_maps_check() -> None:
    """Every mapped role must be one of the role groups (run when the apps are ready)."""
    for app in oidc_apps():
        for entitlement, role in app["settings"].get("entitlement_roles", {}).items():
            if role not in roles.ROLES:
                variable = f"OIDC_{app['provider_id'].upper().replace('-', '_')}_ENTITLEMENT_ROLES"
                raise ImproperlyConfigured(
                    f"{variable} maps {entitlement!r} to {role!r}, which is not a role; the "
                    f"roles are: {', '.join(roles.ROLES)}."
                )


@transaction.atomic
def user_roles_from_provider(*, user, app_settings: Mapping, claims: Mapping) -> RoleChange:
    """Apply one provider's entitlement mapping to a user at log-in, and keep ``is_staff`` in step:
    on with a role, off when the mapping took the last role away (superusers keep it)."""
    role_map = app_settings.get("entitlement_roles") or {}
    if not role_map:
        return RoleChange(add=frozenset(), remove=frozenset())
    entitlements = _values(claims.get(app_settings.get("entitlement_claim")))
    current = user.groups.filter(name__in=roles.ROLES).values_list("name", flat=True)
    change = role_changes(entitlements=entitlements, role_map=role_map, current=current)
    if change.add:
        groups = {g.name: g for g in Group.objects.filter(name__in=change.add)}
        if len(groups) < len(change.add):
            groups = roles.roles_ensure()
        user.groups.add(*(groups[name] for name in change.add))
    if change.remove:
        user.groups.remove(*Group.objects.filter(name__in=change.remove))
    has_role = user.groups.filter(name__in=roles.ROLES).exists()
    staff = user.is_staff
    if has_role:
        staff = True
    elif change.remove and not user.is_superuser:
        staff = False
    if staff != user.is_staff:
        user.is_staff = staff
        user.save(update_fields=["is_staff"])
    if change.add or change.remove:
        logger.info(
            "Roles of user %s from the provider's entitlements: added %s, removed %s",
            user.pk,
            sorted(change.add) or "none",
            sorted(change.remove) or "none",
        )
    return change


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    """allauth's social accounts, as hpcgate wants them (see config/settings.py)."""

    def is_open_for_signup(self, request, sociallogin) -> bool:
        # LOCAL_ACCOUNTS only closes the local sign-up form; a provider's people always get in.
        return True

    def authenticate_by_email(self, sociallogin):
        """Log into an existing account only when it has verified the same address the provider
        says is verified (allauth alone would also take an account whose address is unverified)."""
        found = super().authenticate_by_email(sociallogin)
        if found is None:
            return None
        user, email = found
        if not EmailAddress.objects.filter(user=user, email__iexact=email, verified=True).exists():
            return None
        return found

    def pre_social_login(self, request, sociallogin) -> None:
        super().pre_social_login(request, sociallogin)
        if sociallogin.is_existing and sociallogin.state.get("process") != AuthProcess.CONNECT:
            self._roles_apply(sociallogin)

    def save_user(self, request, sociallogin, form=None):
        user = super().save_user(request, sociallogin, form=form)
        self._roles_apply(sociallogin)
        return user

    def _roles_apply(self, sociallogin) -> None:
        app = sociallogin.provider.app
        user_roles_from_provider(
            user=sociallogin.user,
            app_settings=app.settings,
            claims=claims_merge(sociallogin.account.extra_data),
        )
