"""Who may log in with a local password, as the site's settings say.

LOCAL_ACCOUNTS off: applicants log in only through an OpenID Connect provider; staff keep their
password unless OIDC_REQUIRED_FOR_STAFF is on too. Logging in through a provider never calls a
backend's ``authenticate``, so refusing passwords here leaves those log-ins alone.
"""

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.auth_backends import AuthenticationBackend
from django.conf import settings


def password_login_allowed(*, staff: bool, local_accounts: bool, staff_oidc_only: bool) -> bool:
    if staff:
        return not staff_oidc_only
    return local_accounts


def user_password_login_allowed(user) -> bool:
    return password_login_allowed(
        staff=user.is_staff or user.is_superuser,
        local_accounts=settings.LOCAL_ACCOUNTS,
        staff_oidc_only=settings.OIDC_REQUIRED_FOR_STAFF,
    )


class PasswordPolicyBackend(AuthenticationBackend):
    """allauth's backend (e-mail address or user name with a password, Django's permissions),
    refusing the password of anyone the site sends to a provider. Every password check - the
    site's log-in, the admin's, the API token endpoint - goes through here."""

    def authenticate(self, request, **credentials):
        user = super().authenticate(request, **credentials)
        if user is not None and not user_password_login_allowed(user):
            return None
        return user


def login_options(request) -> dict:
    """What the log-in pages and the header offer (template context processor)."""
    providers = settings.SOCIALACCOUNT_PROVIDERS.get("openid_connect", {}).get("APPS", [])
    return {
        "login_options": {
            "local_accounts": settings.LOCAL_ACCOUNTS,
            "staff_password": not settings.OIDC_REQUIRED_FOR_STAFF,
            "providers": [app["name"] for app in providers],
        }
    }


class AccountAdapter(DefaultAccountAdapter):
    """allauth's local accounts, counting every limit per client address (core.throttles)."""

    def get_client_ip(self, request) -> str:
        from core.throttles import client_address

        return client_address(request)

    def _get_login_attempts_cache_key(self, request, **credentials) -> str:
        # allauth keys the failed-password limit on the account alone, so anybody could lock
        # an account's owner out; here it is the account from one client address.
        account = super()._get_login_attempts_cache_key(request, **credentials)
        return f"{account}@{self.get_client_ip(request)}"
