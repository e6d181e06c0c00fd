"""POST /api/v1/usage/imports/: the usage import over HTTP, for sites that push their accounting.

The body is the accounting text itself (`Content-Type: text/plain`) or a multipart upload in a
`file` field; `cluster`, `format`, `timezone` and `fields` come as query parameters or form
fields. The text is streamed into the same importer as `import_usage`, never held whole.

Who may push: an operator (token or session), or a site with its cluster's site token
(`Authorization: SiteToken <key>`), which imports for that cluster only and needs no `cluster`.
"""

import codecs
from collections.abc import Iterator

from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.authentication import (
    BaseAuthentication,
    SessionAuthentication,
    get_authorization_header,
)
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import BaseParser, FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api_auth import ApiTokenAuthentication
from systems.models import Cluster
from usage.importer import INPUT_FORMATS, UsageImportError, usage_import
from usage.models import SiteToken, UsageImport

_CHUNK = 1 << 16


def text_lines(stream) -> Iterator[str]:
    """Lines of a binary stream decoded as UTF-8, read in chunks. Bad bytes and NUL characters
    (which PostgreSQL cannot store) become U+FFFD, as a reader shows them."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    rest = ""
    while chunk := stream.read(_CHUNK):
        text = rest + decoder.decode(chunk).replace("\x00", "\ufffd")
        lines = text.split("\n")
        rest = lines.pop()
        yield from lines
    rest += decoder.decode(b"", final=True)
    if rest:
        yield rest


class PlainTextParser(BaseParser):
    """Hands the request body on as a stream of lines instead of reading it into memory."""

    media_type = "text/plain"

    def parse(self, stream, media_type=None, parser_context=None):
        return {"lines": text_lines(stream) if stream is not None else iter(())}


class _NoFormatQueryParameter:
    URL_FORMAT_OVERRIDE = None


class AccountingFormatNegotiation(DefaultContentNegotiation):
    """`?format=` names the accounting format here, not the response renderer (DRF's default)."""

    settings = _NoFormatQueryParameter()


class SiteTokenAuthentication(BaseAuthentication):
    """`Authorization: SiteToken <key>`: the request acts for the token's cluster, as no user."""

    keyword = "SiteToken"
    _USED_EVERY = 60  # seconds between two updates of last_used_at

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise AuthenticationFailed(f"Give the site token as '{self.keyword} <key>'.")
        try:
            key = header[1].decode()
        except UnicodeError:
            raise AuthenticationFailed("A site token has no characters beyond ASCII.") from None
        token = (
            SiteToken.objects.active()
            .select_related("cluster")
            .filter(key_digest=SiteToken.digest(key))
            .first()
        )
        if token is None:
            raise AuthenticationFailed("Unknown or revoked site token.")
        now = timezone.now()
        if (
            token.last_used_at is None
            or (now - token.last_used_at).total_seconds() > self._USED_EVERY
        ):
            SiteToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return AnonymousUser(), token

    def authenticate_header(self, request) -> str:
        return self.keyword


class SiteTokenScheme(OpenApiAuthenticationExtension):
    target_class = SiteTokenAuthentication
    name = "siteToken"

    def get_security_definition(self, auto_schema):
        scheme = build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix=SiteTokenAuthentication.keyword
        )
        scheme["description"] = "A cluster's site token; imports for that cluster only."
        return scheme


class CanImportUsage(permissions.BasePermission):
    message = (
        "Importing usage needs the operator role (permission usage.add_usageimport) "
        "or the cluster's site token."
    )

    def has_permission(self, request, view) -> bool:
        if isinstance(request.auth, SiteToken):
            return True
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm("usage.add_usageimport"))


class UsageImportInputSerializer(serializers.Serializer):
    cluster = serializers.SlugRelatedField(slug_field="name", queryset=Cluster.objects.all())
    # a CharField, not a ChoiceField: the schema already has a "format" enum of other values
    format = serializers.CharField(default="sacct", help_text="sacct (default) or pbs.")
    timezone = serializers.CharField(required=False, allow_blank=True, default="")
    fields = serializers.CharField(required=False, allow_blank=True, default="")

    def validate_format(self, value: str) -> str:
        if value not in INPUT_FORMATS:
            raise serializers.ValidationError(f"Use one of: {', '.join(INPUT_FORMATS)}.")
        return value


class UsageImportMultipartSerializer(UsageImportInputSerializer):
    file = serializers.FileField()


class UsageImportOutputSerializer(serializers.ModelSerializer):
    cluster = serializers.SlugRelatedField(slug_field="name", read_only=True)
    summary = serializers.CharField(read_only=True)

    class Meta:
        model = UsageImport
        fields = [
            "id",
            "cluster",
            "source",
            "input_format",
            "filename",
            "status",
            "started_at",
            "finished_at",
            "imported",
            "updated",
            "unchanged",
            "steps_skipped",
            "unmatched",
            "rejected",
            "rejected_lines",
            "summary",
        ]


_QUERY_PARAMETERS = [
    OpenApiParameter(
        "cluster",
        str,
        description="Cluster name (with a text/plain body; a site token implies it).",
    ),
    OpenApiParameter(
        "format", str, enum=list(INPUT_FORMATS), description="sacct (default) or pbs."
    ),
    OpenApiParameter(
        "timezone", str, description="IANA zone of the times (default: the site's zone)."
    ),
    OpenApiParameter(
        "fields", str, description="Comma list given to sacct --format, for header-less input."
    ),
]


class UsageImportCreateApi(APIView):
    """Import scheduler accounting for one cluster; answers with the import run's summary."""

    authentication_classes = [
        ApiTokenAuthentication,
        SiteTokenAuthentication,
        SessionAuthentication,
    ]
    permission_classes = [CanImportUsage]
    parser_classes = [PlainTextParser, MultiPartParser, FormParser]
    content_negotiation_class = AccountingFormatNegotiation

    @extend_schema(
        tags=["usage"],
        summary="Import scheduler accounting (sacct --parsable2 or PBS logs)",
        parameters=_QUERY_PARAMETERS,
        request={
            "text/plain": OpenApiTypes.STR,
            "multipart/form-data": UsageImportMultipartSerializer,
        },
        responses={201: UsageImportOutputSerializer},
    )
    def post(self, request):
        data = request.data
        lines = data.get("lines") if isinstance(data, dict) else None
        params = {key: request.query_params[key] for key in request.query_params}
        if lines is None:
            params.update(
                {
                    key: data[key]
                    for key in ("cluster", "format", "timezone", "fields")
                    if key in data
                }
            )
            upload = data.get("file")
            if upload is None:
                raise ValidationError(
                    {"file": "Send the accounting as a text/plain body or a multipart 'file'."}
                )
            lines = text_lines(upload)
            filename = upload.name
        else:
            filename = ""
        site_token = request.auth if isinstance(request.auth, SiteToken) else None
        if site_token is not None:
            given = params.setdefault("cluster", site_token.cluster.name)
            if given != site_token.cluster.name:
                raise PermissionDenied(
                    f"This site token imports for cluster {site_token.cluster.name} only."
                )
        nul = sorted(key for key, value in params.items() if "\x00" in str(value))
        if nul:
            raise ValidationError({key: ["Null characters are not allowed."] for key in nul})
        form = UsageImportInputSerializer(data=params)
        form.is_valid(raise_exception=True)
        options = form.validated_data
        try:
            run = usage_import(
                cluster=options["cluster"],
                lines=lines,
                input_format=options["format"],
                tz=options["timezone"] or None,
                fields=options["fields"] or None,
                source=UsageImport.Source.API,
                actor=request.user,
                site_token=site_token,
                filename=filename,
            )
        except UsageImportError as exc:
            raise ValidationError({"detail": f"{exc} Nothing was imported."}) from exc
        return Response(UsageImportOutputSerializer(run).data, status=status.HTTP_201_CREATED)
