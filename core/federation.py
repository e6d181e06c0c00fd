"""OpenID Connect providers and the local-account policy, read from the environment.

settings.py calls this before Django is set up, so nothing here touches models or apps. Each
provider named in ``OIDC_PROVIDERS`` becomes one app of allauth's ``openid_connect`` provider:

    OIDC_PROVIDERS=myaccessid,keycloak
    OIDC_MYACCESSID_ISSUER=https://proxy.example.org
    OIDC_MYACCESSID_CLIENT_ID=...
    OIDC_MYACCESSID_SECRET=...
    OIDC_MYACCESSID_SCOPES=openid email profile eduperson_entitlement   (optional)
    OIDC_MYACCESSID_NAME=MyAccessID                                      (optional)
    OIDC_MYACCESSID_ENTITLEMENT_ROLES=urn:...:hpcgate:reviewer=reviewer  (optional)
    OIDC_MYACCESSID_ENTITLEMENT_CLAIM=eduperson_entitlement              (optional)
    OIDC_MYACCESSID_LINK_BY_EMAIL=on                                     (optional)

A provider id becomes part of the callback URL, ``/accounts/oidc/<id>/login/callback/``, and of
the variable names (upper case, ``-`` as ``_``).
"""

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

PROVIDER_ID = re.compile(r"[a-z][a-z0-9-]{0,39}")
FIELDS = (
    "ISSUER",
    "CLIENT_ID",
    "SECRET",
    "SCOPES",
    "NAME",
    "ENTITLEMENT_CLAIM",
    "ENTITLEMENT_ROLES",
    "LINK_BY_EMAIL",
)
REQUIRED = ("ISSUER", "CLIENT_ID", "SECRET")
DEFAULT_SCOPES = ("openid", "email", "profile")
DEFAULT_ENTITLEMENT_CLAIM = "eduperson_entitlement"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
_PROVIDER_VARIABLE = re.compile(rf"OIDC_[A-Z0-9_]+?_(?:{'|'.join(FIELDS)})")


def _prefix(provider_id: str) -> str:
    return "OIDC_" + provider_id.upper().replace("-", "_") + "_"


def provider_ids_parse(value: str) -> list[str]:
    ids = [part.strip().lower() for part in value.split(",") if part.strip()]
    for provider_id in ids:
        if not PROVIDER_ID.fullmatch(provider_id):
            raise ImproperlyConfigured(
                f"OIDC_PROVIDERS: {provider_id!r} is not a valid provider id (a letter, then "
                "letters, digits or '-'; it becomes part of the callback URL)."
            )
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ImproperlyConfigured(f"OIDC_PROVIDERS names {', '.join(duplicates)} twice.")
    return ids


def issuer_check(name: str, issuer: str) -> str:
    """The issuer without a trailing slash; HTTPS unless the provider runs on this machine."""
    parts = urlsplit(issuer)
    loopback = parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
    if not (parts.scheme == "https" or loopback) or not parts.hostname:
        raise ImproperlyConfigured(
            f"{name} must be the provider's https:// issuer URL (plain http only on "
            f"127.0.0.1 or localhost), not {issuer!r}."
        )
    if parts.query or parts.fragment:
        raise ImproperlyConfigured(f"{name} must not have a query or a fragment: {issuer!r}.")
    return issuer.rstrip("/")


def scopes_parse(name: str, value: str) -> list[str]:
    scopes = [s for s in re.split(r"[\s,]+", value) if s] if value else list(DEFAULT_SCOPES)
    if "openid" not in scopes:
        raise ImproperlyConfigured(f"{name} must include the scope 'openid', got {value!r}.")
    return list(dict.fromkeys(scopes))


def switch_parse(name: str, value: str, *, default: bool) -> bool:
    if not value:
        return default
    if value.lower() in ("on", "true", "yes", "1"):
        return True
    if value.lower() in ("off", "false", "no", "0"):
        return False
    raise ImproperlyConfigured(f"{name} must be on or off, not {value!r}.")


def entitlement_roles_parse(name: str, value: str) -> dict[str, str]:
    """``entitlement=role,entitlement=role`` -> {entitlement: role}. Role names are checked
    against the role groups once the apps are loaded (core.identity.role_maps_check)."""
    mapping: dict[str, str] = {}
    for item in value.split(","):
        if not item.strip():
            continue
        entitlement, sep, role = item.rpartition("=")
        entitlement, role = entitlement.strip(), role.strip()
        if not sep or not entitlement or not role:
            raise ImproperlyConfigured(
                f"{name}: {item.strip()!r} is not 'entitlement=role' (e.g. "
                "'urn:geant:myaccessid.org:entitlement:hpcgate:reviewer=reviewer')."
            )
        if mapping.get(entitlement, role) != role:
            raise ImproperlyConfigured(f"{name} maps {entitlement!r} to two roles.")
        mapping[entitlement] = role
    return mapping


def oidc_apps_from_env(environ: Mapping[str, str]) -> list[dict]:
    """The ``APPS`` list of allauth's ``openid_connect`` provider; ImproperlyConfigured naming
    the variable when one is missing, malformed, or set for a provider not in OIDC_PROVIDERS."""
    ids = provider_ids_parse(environ.get("OIDC_PROVIDERS", ""))
    expected = {_prefix(i) + field for i in ids for field in FIELDS}
    strays = sorted(
        key for key in environ if _PROVIDER_VARIABLE.fullmatch(key) and key not in expected
    )
    if strays:
        raise ImproperlyConfigured(
            f"{', '.join(strays)} set, but OIDC_PROVIDERS does not list that provider "
            f"(OIDC_PROVIDERS={environ.get('OIDC_PROVIDERS', '')!r})."
        )
    apps = []
    for provider_id in ids:
        prefix = _prefix(provider_id)
        values = {field: environ.get(prefix + field, "").strip() for field in FIELDS}
        missing = [prefix + field for field in REQUIRED if not values[field]]
        if missing:
            raise ImproperlyConfigured(
                f"OpenID Connect provider {provider_id!r} is incomplete: set {', '.join(missing)}."
            )
        apps.append(
            {
                "provider_id": provider_id,
                "name": values["NAME"] or provider_id,
                "client_id": values["CLIENT_ID"],
                "secret": values["SECRET"],
                "settings": {
                    "server_url": issuer_check(prefix + "ISSUER", values["ISSUER"]),
                    "scope": scopes_parse(prefix + "SCOPES", values["SCOPES"]),
                    "oauth_pkce_enabled": True,
                    # allauth: may a verified address log into the account that verified it?
                    "email_authentication": switch_parse(
                        prefix + "LINK_BY_EMAIL", values["LINK_BY_EMAIL"], default=True
                    ),
                    "entitlement_claim": values["ENTITLEMENT_CLAIM"] or DEFAULT_ENTITLEMENT_CLAIM,
                    "entitlement_roles": entitlement_roles_parse(
                        prefix + "ENTITLEMENT_ROLES", values["ENTITLEMENT_ROLES"]
                    ),
                },
            }
        )
    return apps


def login_policy_check(*, apps: list[dict], local_accounts: bool, staff_oidc_only: bool) -> None:
    """Refuse a policy under which nobody could log in."""
    if apps:
        return
    if not local_accounts:
        raise ImproperlyConfigured(
            "LOCAL_ACCOUNTS is off but no OpenID Connect provider is configured "
            "(OIDC_PROVIDERS): applicants could neither sign up nor log in."
        )
    if staff_oidc_only:
        raise ImproperlyConfigured(
            "OIDC_REQUIRED_FOR_STAFF is on but no OpenID Connect provider is configured "
            "(OIDC_PROVIDERS): staff could not log in."
        )
