"""What every API operation shares: one error shape, the token endpoint, the caller's tokens."""

import logging

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, permissions, serializers, status, viewsets
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from core import selectors, services
from core.models import ApiToken
from core.serializers import ErrorSerializer
from core.throttles import LoginAddressThrottle, PasswordGuessesLimited, password_authenticate

logger = logging.getLogger(__name__)

DATABASE_DOWN = "The database does not answer; nothing was changed. Try again in a moment."
RETRY_AFTER_LOCKED = 300


def _flatten(data, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as {"field.path": [messages]}."""
    if isinstance(data, dict):
        flat: dict[str, list[str]] = {}
        for key, value in data.items():
            name = "__all__" if key in ("non_field_errors", "__all__") and not prefix else key
            flat.update(_flatten(value, f"{prefix}.{name}" if prefix else str(name)))
        return flat
    if isinstance(data, list):
        if all(not isinstance(item, (dict, list)) for item in data):
            return {prefix or "__all__": [str(item) for item in data]} if data else {}
        flat = {}
        for index, item in enumerate(data):
            flat.update(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
        return flat
    return {prefix or "__all__": [str(data)]}


def error_body(detail: str, errors: dict | None = None) -> dict:
    return {"detail": detail, "errors": errors or {}}


def error_response(detail: str, code: int, errors: dict | None = None, **headers) -> Response:
    response = Response(error_body(detail, errors), status=code)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def exception_handler(exc, context):
    """DRF's handler in the one error shape; a JSON 503 when the database is down, and 400 for a
    domain rule a service refused (Django's ValidationError)."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        logger.exception("API request failed: the database does not answer")
        return error_response(DATABASE_DOWN, 503, Retry_After="30")
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
        )
    elif isinstance(exc, PermissionError):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(data)
        first = next(iter(errors.values()), ["The input was refused."])
        detail = (
            "The input was refused: " + first[0]
            if len(errors) == 1
            else ("The input was refused; see the messages per field.")
        )
        response.data = error_body(detail, errors)
    elif isinstance(data, dict) and "detail" in data:
        response.data = error_body(str(data["detail"]))
    else:
        response.data = error_body(str(data))
    return response


# Shared responses for extend_schema.
ERROR = OpenApiResponse(ErrorSerializer, description="The error, in the API's one shape.")
INVALID = OpenApiResponse(ErrorSerializer, description="The input was refused; see `errors`.")
CONFLICT = OpenApiResponse(ErrorSerializer, description="The current state does not allow this.")


class _NoFormatOverride:
    URL_FORMAT_OVERRIDE = None


class FormatParameterNegotiation(DefaultContentNegotiation):
    """For operations whose `format` query parameter is their own (a filter), not DRF's choice
    of renderer: without this, `?format=csv` answers 404."""

    settings = _NoFormatOverride()


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The current state does not allow this."
    default_code = "conflict"


class TooManyGuesses(exceptions.Throttled):
    default_detail = "Too many failed log-ins from your address; try again later."


# Tokens


class TokenLifetime(serializers.Serializer):
    days = serializers.IntegerField(
        min_value=1,
        max_value=settings.API_TOKEN_MAX_DAYS,
        required=False,
        allow_null=True,
        default=None,
        help_text="How long the token is valid (the site's default when left out).",
    )


class TokenInput(TokenLifetime):
    username = serializers.CharField(max_length=254, trim_whitespace=False)
    password = serializers.CharField(max_length=4096, trim_whitespace=False)
    name = serializers.CharField(
        max_length=100, required=False, default="API token", help_text="What uses the token."
    )


class TokenOutput(serializers.ModelSerializer):
    state = serializers.CharField(
        read_only=True, help_text="active, expired, revoked or revoked by a password change."
    )

    class Meta:
        model = ApiToken
        fields = ["id", "name", "key_start", "created_at", "expires_at", "last_used_at", "state"]


class NewTokenOutput(TokenOutput):
    token = serializers.CharField(help_text="The key, shown this once. Send it as `Token <key>`.")

    class Meta(TokenOutput.Meta):
        fields = ["token", *TokenOutput.Meta.fields]


class TokenCreateInput(TokenLifetime):
    name = serializers.CharField(max_length=100, help_text="What uses the token.")


def _token_create(user, name: str, days, *, code=status.HTTP_201_CREATED) -> Response:
    token, key = services.token_create(user=user, name=name, days=days)
    token.token = key
    return Response(NewTokenOutput(token).data, status=code)


@extend_schema(
    tags=["auth"],
    summary="Exchange a user name and password for a new API token",
    request=TokenInput,
    responses={
        200: NewTokenOutput,
        400: INVALID,
        401: OpenApiResponse(ErrorSerializer, description="Wrong user name or password."),
        403: OpenApiResponse(ErrorSerializer, description="The e-mail address is not verified."),
        429: ERROR,
    },
)
class TokenView(APIView):
    """As the site's log-in, counting failed passwords in the same limits: an applicant whose
    e-mail address is not verified gets no token. Every call makes a new token (200, as this
    endpoint always answered)."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [LoginAddressThrottle]

    def post(self, request):
        data = TokenInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            user = password_authenticate(
                request, username=values["username"], password=values["password"]
            )
        except PasswordGuessesLimited:
            raise TooManyGuesses(wait=RETRY_AFTER_LOCKED) from None
        if user is None or not user.is_active:
            return error_response(
                "Unable to log in with the user name and password given.",
                status.HTTP_401_UNAUTHORIZED,
                WWW_Authenticate='Token realm="api"',
            )
        if not (user.is_staff or _email_verified(user)):
            raise exceptions.PermissionDenied(
                "Verify your e-mail address first: log in on the site to get a new "
                "verification link."
            )
        return _token_create(user, values["name"], values["days"], code=status.HTTP_200_OK)


def _email_verified(user) -> bool:
    if settings.ACCOUNT_EMAIL_VERIFICATION != "mandatory":
        return True
    return EmailAddress.objects.filter(user=user, verified=True).exists()


@extend_schema_view(
    list=extend_schema(summary="My API tokens (keys are never shown again)"),
    create=extend_schema(
        summary="Make a new API token",
        request=TokenCreateInput,
        responses={201: NewTokenOutput, 400: INVALID},
    ),
    retrieve=extend_schema(summary="One of my API tokens"),
    destroy=extend_schema(summary="Revoke one of my API tokens", responses={204: None}),
)
@extend_schema(tags=["auth"])
class OwnTokenViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The caller's own tokens; anybody else's are 404."""

    serializer_class = TokenOutput

    def get_queryset(self):
        return selectors.tokens_of(self.request.user)

    def create(self, request):
        data = TokenCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        return _token_create(request.user, data.validated_data["name"], data.validated_data["days"])

    def perform_destroy(self, instance):
        services.token_revoke(token=instance, user=self.request.user)
