"""`Authorization: Token <key>`: personal API tokens (core.models.ApiToken)."""

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from core.models import ApiToken, key_digest

_USED_EVERY = 60  # seconds between two updates of last_used_at


class ApiTokenAuthentication(BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise AuthenticationFailed(f"Give the token as '{self.keyword} <key>'.")
        try:
            key = header[1].decode("ascii")
        except UnicodeError:
            raise AuthenticationFailed("A token has no characters beyond ASCII.") from None
        now = timezone.now()
        token = (
            ApiToken.objects.usable(now=now)
            .select_related("user")
            .filter(key_digest=key_digest(key))
            .first()
        )
        if token is None:
            raise AuthenticationFailed("Unknown, expired or revoked token.")
        if token.password_changed:
            ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now)
            raise AuthenticationFailed("This token was revoked when the password changed.")
        if not token.user.is_active:
            raise AuthenticationFailed("The token's user is inactive.")
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > _USED_EVERY:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request) -> str:
        return self.keyword


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = ApiTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        scheme = build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix=ApiTokenAuthentication.keyword
        )
        scheme["description"] = (
            "A personal token from POST /api/v1/auth/token/ or the Tokens page; it expires, "
            "and a password change revokes it."
        )
        return scheme
