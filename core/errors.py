"""Error pages: the API's error shape under /api/, Django's own pages elsewhere."""

from django.http import JsonResponse
from django.views import defaults

from core.middleware import API_PREFIX


def _api(request) -> bool:
    return request.path_info.startswith(API_PREFIX)


def _json(detail: str, status: int) -> JsonResponse:
    return JsonResponse({"detail": detail, "errors": {}}, status=status)


def bad_request(request, exception):
    if _api(request):
        return _json("The request is malformed.", 400)
    return defaults.bad_request(request, exception)


def permission_denied(request, exception):
    if _api(request):
        return _json("You do not have permission to do this.", 403)
    return defaults.permission_denied(request, exception)


def page_not_found(request, exception):
    if _api(request):
        return _json("Not found.", 404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _api(request):
        return _json("The server failed; the error is logged.", 500)
    return defaults.server_error(request)


class TransitionError(Exception):
    """A state transition that the current state does not allow; the message says why, in words
    for the person who asked. Each app's services raise their own subclass."""
