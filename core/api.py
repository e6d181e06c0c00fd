import hashlib
import logging

from allauth.account.models import EmailAddress
from django.conf import settings
from django.db import InterfaceError, OperationalError
from drf_spectacular.utils import extend_schema
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)

DATABASE_DOWN = "The database does not answer; nothing was changed. Try again in a moment."


def exception_handler(exc, context):
    """DRF's handler, plus a JSON 503 when the database is down instead of an HTML 500."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        logger.exception("API request failed: the database does not answer")
        response = Response({"detail": DATABASE_DOWN}, status=503)
        response["Retry-After"] = "30"
        return response
    return drf_exception_handler(exc, context)


class LoginAddressThrottle(AnonRateThrottle):
    scope = "login_address"


class LoginAccountThrottle(SimpleRateThrottle):
    """Counts attempts per user name, so guesses spread over many addresses still stop."""

    scope = "login_account"

    def get_cache_key(self, request, view):
        username = str(request.data.get("username", "")).strip().lower()
        if not username:
            return None
        ident = hashlib.sha256(username.encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}


@extend_schema(tags=["auth"], summary="Exchange a user name and password for an API token")
class TokenView(ObtainAuthToken):
    """As the site's log-in: an applicant whose e-mail address is not verified gets no token."""

    throttle_classes = [LoginAddressThrottle, LoginAccountThrottle]

    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        if not (user.is_staff or _email_verified(user)):
            raise ValidationError(
                {
                    "non_field_errors": [
                        "Verify your e-mail address first: log in on the site to get a new "
                        "verification link."
                    ]
                }
            )
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})


def _email_verified(user) -> bool:
    if settings.ACCOUNT_EMAIL_VERIFICATION != "mandatory":
        return True
    return EmailAddress.objects.filter(user=user, verified=True).exists()
