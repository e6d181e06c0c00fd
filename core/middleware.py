"""Middleware of the site as a whole."""

from collections import Counter
from urllib.parse import parse_qsl, unquote_to_bytes, urlsplit

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.cache import patch_cache_control

API_PREFIX = "/api/"
# the REST API proper; the schema and docs pages under /api/ take their own query parameters
API_OPERATIONS_PREFIX = "/api/v1/"


class HealthCheckMiddleware:
    """Answers `/healthz` (readiness) and `/livez` (liveness) ahead of everything else, host
    validation and the HTTPS redirect included: container and load-balancer probes call the app
    by its address, not by the public host name, and over plain HTTP."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.paths = {reverse("healthz"): "healthz", reverse("livez"): "livez"}

    def __call__(self, request):
        probe = self.paths.get(request.path_info)
        if probe:
            from core import health

            return getattr(health, probe)(request)
        return self.get_response(request)


def refusal(request, status: int, detail: str) -> HttpResponse:
    """A refusal before any view ran: the API's error shape on API paths, plain text elsewhere."""
    if request.path_info.startswith(API_PREFIX):
        return JsonResponse({"detail": detail, "errors": {}}, status=status)
    return HttpResponse(detail, status=status, content_type="text/plain; charset=utf-8")


class RequestLimitsMiddleware:
    """Refuses what no view can handle before it is read: a body larger than the site takes, and
    a NUL character in the path or the query (PostgreSQL cannot store or compare one)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        problem = self._problem(request)
        if problem:
            return refusal(request, *problem)
        return self.get_response(request)

    @staticmethod
    def body_limit(path: str) -> int:
        for prefix, limit in settings.REQUEST_BODY_LIMITS.items():
            if path.startswith(prefix):
                return limit
        return settings.REQUEST_BODY_MAX_BYTES

    def _problem(self, request) -> tuple[int, str] | None:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return 400, "The Content-Length header is not a number."
        limit = self.body_limit(request.path_info)
        if length > limit:
            return 413, f"The request body is larger than this address takes ({limit:,} bytes)."
        if "\x00" in request.path_info:
            return 400, "The address contains a NUL character."
        query = request.META.get("QUERY_STRING", "")
        if "%00" in query or "\x00" in query or b"\x00" in unquote_to_bytes(query):
            return 400, "The query contains a NUL character."
        if request.path_info.startswith(API_OPERATIONS_PREFIX) and query:
            return self._api_query_problem(query)
        return None

    @staticmethod
    def _api_query_problem(query: str) -> tuple[int, str] | None:
        """The API's query parameters each take one value, and an empty one is no value: both
        are refused rather than silently ignored (the schema says so too)."""
        pairs = parse_qsl(query, keep_blank_values=True)
        for name, count in Counter(name for name, _ in pairs).items():
            if count > 1:
                return 400, f"The query parameter '{name}' is given {count} times."
        for name, value in pairs:
            if value == "":
                return 400, f"The query parameter '{name}' is empty."
        return None


# Browser features no page of the site uses.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "usb",
        "interest-cohort",
    )
)


def provider_origins() -> list[str]:
    """The origins of the configured OpenID Connect providers."""
    apps = settings.SOCIALACCOUNT_PROVIDERS.get("openid_connect", {}).get("APPS", [])
    return sorted(
        {"{0.scheme}://{0.netloc}".format(urlsplit(app["settings"]["server_url"])) for app in apps}
    )


class SecurityHeadersMiddleware:
    """`Permissions-Policy` on every response, and `Cache-Control: no-store` on every response to
    a request that carries credentials (a session cookie or an Authorization header): pages and
    API answers behind log-in never stay in a shared or browser cache. Sits inside django-csp's
    middleware, to let forms reach the OpenID Connect providers (form-action)."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.static_prefix = settings.STATIC_URL

    def __call__(self, request):
        response = self.get_response(request)
        origins = provider_origins()
        if origins:
            update = dict(getattr(response, "_csp_update", None) or {})
            update["form-action"] = [*update.get("form-action", []), *origins]
            response._csp_update = update
        response.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        if self._credentialed(request) and not request.path_info.startswith(self.static_prefix):
            patch_cache_control(response, no_store=True, private=True)
            response.headers.pop("Expires", None)
        return response

    @staticmethod
    def _credentialed(request) -> bool:
        if "HTTP_AUTHORIZATION" in request.META:
            return True
        if settings.SESSION_COOKIE_NAME in request.COOKIES:
            return True
        user = getattr(request, "user", None)
        return bool(user is not None and user.is_authenticated)
