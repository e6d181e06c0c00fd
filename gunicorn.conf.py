"""gunicorn reads this file from the directory it starts in (the image's /app)."""

from gunicorn.glogging import Logger

from compliance.privacy import is_reporting_path


class AccessLogWithoutReports(Logger):
    """The access log, less the requests to the confidential reporting pages: no line with a
    reporter's address, browser or time is written for them."""

    def access(self, resp, req, environ, request_time):
        if is_reporting_path(environ.get("PATH_INFO", "")):
            return
        super().access(resp, req, environ, request_time)


logger_class = AccessLogWithoutReports
