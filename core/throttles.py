"""Who a request comes from, and how many password guesses it may make.

Behind the TLS proxy the README asks for, every request arrives from the proxy's address; the
client's own address is in `X-Forwarded-For`, which only the proxies named by `TRUSTED_PROXIES`
may vouch for. Every limit of the site (the log-in pages, the admin's log-in, the API's token
endpoint and DRF throttles) counts per `client_address`.

Failed passwords are limited twice, as allauth does for the site's log-in (the `login_failed`
rate): per client address, and per account *and* address. A guesser therefore locks out only
themselves, never the account's owner logging in from elsewhere.
"""

from __future__ import annotations

import ipaddress

from allauth.account.adapter import get_adapter
from django.conf import settings
from django.core.exceptions import ValidationError
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle


def _clean(address: str) -> str:
    address = address.strip()
    if address.startswith("[") and "]" in address:
        address = address[1 : address.index("]")]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return ""


def client_address(request) -> str:
    """The client's address: REMOTE_ADDR, or the `X-Forwarded-For` entry that the last trusted
    proxy received the request from. Never an address a client could choose itself."""
    remote = _clean(request.META.get("REMOTE_ADDR", "")) or "unknown"
    proxies = settings.TRUSTED_PROXIES
    forwarded = [_clean(part) for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if proxies.count:
        # Each proxy appends the address it was called from; the first proxy's entry is the
        # client's. Fewer entries than proxies: the request bypassed a proxy, trust nothing.
        if len(forwarded) >= proxies.count:
            return forwarded[-proxies.count]
        return remote
    if proxies.networks:
        address = remote
        while forwarded and proxies.trusts(address):
            address = forwarded.pop()
        return address
    return remote


class PasswordGuessesLimited(Exception):
    """Too many failed passwords from this address (for this account)."""


def password_authenticate(request, *, username: str, password: str):
    """Check a password the way the site's log-in does, counting failures in the same
    `login_failed` limits: the admin's log-in and the API token endpoint use this."""
    try:
        return get_adapter(request).authenticate(request, username=username, password=password)
    except ValidationError as error:
        if getattr(error, "code", "") == "too_many_login_attempts":
            raise PasswordGuessesLimited(error.messages[0]) from None
        raise


class ClientAddressMixin:
    """DRF throttles keyed by `client_address` instead of DRF's own reading of the headers."""

    def get_ident(self, request) -> str:
        return client_address(request)


class AnonThrottle(ClientAddressMixin, AnonRateThrottle):
    pass


class UserThrottle(ClientAddressMixin, UserRateThrottle):
    pass


class LoginAddressThrottle(ClientAddressMixin, AnonRateThrottle):
    """Every request to the token endpoint, per client address."""

    scope = "login_address"
