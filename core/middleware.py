"""Middleware of the site as a whole."""

from django.urls import reverse


class HealthCheckMiddleware:
    """Answers `/healthz` ahead of everything else, host validation and the HTTPS redirect
    included: container and load-balancer probes call the app by its address, not by the
    public host name, and over plain HTTP."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.path = reverse("healthz")

    def __call__(self, request):
        if request.path_info == self.path:
            from core.health import healthz

            return healthz(request)
        return self.get_response(request)
