"""The API's parsers: input that is not what its media type says is refused with 400, never
taken for an empty form or turned into a server error."""

from django.utils.http import parse_header_parameters
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser as DRFJSONParser
from rest_framework.parsers import MultiPartParser as DRFMultiPartParser


class JSONParser(DRFJSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the input is nested too deeply.") from None


class MultiPartParser(DRFMultiPartParser):
    """Multipart form data, refused when its boundary never appears in the body: Django reads
    such a body as a form without fields, and an action that needs none (withdrawing an
    application) would go ahead on bytes that were never a form."""

    def parse(self, stream, media_type=None, parser_context=None):
        _, parameters = parse_header_parameters(media_type or "")
        boundary = parameters.get("boundary", "")
        watched = _BoundaryWatch(stream, f"--{boundary}".encode("latin-1", "replace"))
        parsed = super().parse(watched, media_type, parser_context)
        if watched.read_any and not watched.seen:
            raise ParseError(
                "Multipart form parse error - the body holds no part: its boundary"
                f" '{boundary}' (from the Content-Type header) does not appear in it."
            )
        return parsed


class _BoundaryWatch:
    """A stream that notes whether `marker` went through it, also across two reads."""

    def __init__(self, stream, marker: bytes) -> None:
        self.stream = stream
        self.marker = marker
        self.seen = False
        self.read_any = False
        self._tail = b""

    def read(self, *args) -> bytes:
        chunk = self.stream.read(*args)
        if chunk:
            self.read_any = True
            if not self.seen:
                window = self._tail + chunk
                self.seen = self.marker in window
                keep = len(self.marker) - 1  # a marker cut by this read ends in these bytes
                self._tail = window[-keep:] if keep else b""
        return chunk
