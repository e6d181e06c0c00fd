"""The confidential reporting pages leave no trace in the logs: no path, address or browser.

Kept free of models so that the logging configuration and gunicorn can import it early.
"""

import logging

REPORTING_PATHS = ("/report/",)


def is_reporting_path(path: str) -> bool:
    return path.startswith(REPORTING_PATHS)


class ReportingChannelFilter(logging.Filter):
    """Drops log records about a request to the reporting pages: Django's request and CSRF
    warnings (which carry the request) and the development server's request lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        path = getattr(request, "path", None)
        if isinstance(path, str):
            return not is_reporting_path(path)
        if record.name == "django.server":
            # "GET /report/case/ HTTP/1.1" 200 1234
            return not any(f" {prefix}" in record.getMessage() for prefix in REPORTING_PATHS)
        return True
