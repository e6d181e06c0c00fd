"""Logging filters of the site."""

import logging


class ForbiddenOnce(logging.Filter):
    """A refused request (403) is logged once, as one line: Django's request logger keeps its
    warning without the traceback of the PermissionDenied behind it (an expected refusal, not a
    fault), and the development server's access line for it is left out."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) != 403:
            return True
        if record.name == "django.server":
            return False
        record.exc_info = None
        record.exc_text = None
        return True
