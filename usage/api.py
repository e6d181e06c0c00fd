"""POST /api/v1/usage/imports/: the usage import over HTTP, for sites that push their accounting.

The body is the accounting text itself (`Content-Type: text/plain`) or a multipart upload in a
`file` field; `cluster`, `format`, `timezone`, `fields`, `delimiter` and `time_format` come as
query parameters or form fields. The upload is streamed to storage, never held whole, its
header checked, and its import queued (usage.uploads): the answer is `202` with the import
run's URL, where `GET` gives its state and, once done, the same counts as `import_usage`.

Who may push: an operator (token or session), or a site with its cluster's site token
(`Authorization: SiteToken <key>`), which imports for that cluster only and needs no `cluster`.
The same token reads the runs of its cluster.
"""

from collections.abc import Iterator

from django.contrib.auth.models import AnonymousUser
from django.urls import reverse
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
from rest_framework.exceptions import (
    AuthenticationFailed,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import BaseParser, FormParser
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api_auth import ApiTokenAuthentication
from core.parsers import MultiPartParser
from systems.models import Cluster
from usage.importer import INPUT_FORMATS, UsageImportError
from usage.models import SiteToken, UsageImport
from usage.uploads import usage_upload_queue

_CHUNK = 1 << 16


def _stream_chunks(stream) -> Iterator[bytes]:
    while chunk := stream.read(_CHUNK):
        yield chunk


class PlainTextParser(BaseParser):
    """Hands the request body on as a stream of byte chunks instead of reading it into memory."""

    media_type = "text/plain"

    def parse(self, stream, media_type=None, parser_context=None):
        return {"chunks": _stream_chunks(stream) if stream is not None else iter(())}


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
    delimiter = serializers.CharField(
        required=False,
        default="",
        trim_whitespace=False,
        max_length=64,
        help_text="What was passed to sacct --delimiter (default '|').",
    )
    time_format = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=200,
        help_text="The SLURM_TIME_FORMAT sacct ran with, when neither ISO 8601 nor epoch seconds.",
    )

    def validate_format(self, value: str) -> str:
        if value not in INPUT_FORMATS:
            raise serializers.ValidationError(f"Use one of: {', '.join(INPUT_FORMATS)}.")
        return value


class UsageImportMultipartSerializer(UsageImportInputSerializer):
    file = serializers.FileField()


class UsageImportOutputSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    cluster = serializers.SlugRelatedField(slug_field="name", read_only=True)
    summary = serializers.CharField(read_only=True)

    class Meta:
        model = UsageImport
        fields = [
            "id",
            "url",
            "cluster",
            "source",
            "input_format",
            "filename",
            "status",
            "started_at",
            "finished_at",
            *UsageImport.BUCKETS,
            *UsageImport.INFORMATIONAL,
            "rejected_lines",
            "summary",
            "error",
        ]

    def get_url(self, run: UsageImport) -> str:
        # Django's reverse: DRF's would carry the push's ?format= (the accounting format) over
        path = reverse("usage-import-detail", args=[run.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


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
    OpenApiParameter("delimiter", str, description="What was passed to sacct --delimiter."),
    OpenApiParameter(
        "time_format", str, description="The SLURM_TIME_FORMAT strftime pattern sacct ran with."
    ),
]

_OPTIONS = ("cluster", "format", "timezone", "fields", "delimiter", "time_format")


class UsageImportCreateApi(APIView):
    """Queue an import of scheduler accounting for one cluster; answers 202 with the run."""

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
        responses={202: UsageImportOutputSerializer},
    )
    def post(self, request):
        data = request.data
        chunks = data.get("chunks") if isinstance(data, dict) else None
        params = {key: request.query_params[key] for key in request.query_params}
        if chunks is None:
            params.update({key: data[key] for key in _OPTIONS if key in data})
            upload = data.get("file")
            if upload is None or not hasattr(upload, "chunks"):
                raise ValidationError(
                    {"file": "Send the accounting as a text/plain body or a multipart 'file'."}
                )
            chunks = upload.chunks(_CHUNK)
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
            run = usage_upload_queue(
                cluster=options["cluster"],
                chunks=chunks,
                input_format=options["format"],
                tz=options["timezone"] or None,
                fields=options["fields"] or None,
                delimiter=options["delimiter"] or None,
                time_format=options["time_format"] or None,
                actor=request.user,
                site_token=site_token,
                filename=filename,
            )
        except UsageImportError as exc:
            raise ValidationError({"detail": f"{exc} Nothing was imported."}) from exc
        body = UsageImportOutputSerializer(run, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})


class CanReadUsageImport(permissions.BasePermission):
    message = (
        "Reading import runs needs permission usage.view_usageimport or the cluster's site token."
    )

    def has_permission(self, request, view) -> bool:
        if isinstance(request.auth, SiteToken):
            return True
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm("usage.view_usageimport"))


class UsageImportDetailApi(APIView):
    """An import run: its state (queued, running, done, failed, interrupted) and its counts."""

    authentication_classes = [
        ApiTokenAuthentication,
        SiteTokenAuthentication,
        SessionAuthentication,
    ]
    permission_classes = [CanReadUsageImport]

    @extend_schema(
        tags=["usage"],
        summary="An import run's state and summary",
        responses={200: UsageImportOutputSerializer},
    )
    def get(self, request, pk: int):
        runs = UsageImport.objects.select_related("cluster")
        if isinstance(request.auth, SiteToken):  # a site sees its own cluster's runs only
            runs = runs.filter(cluster_id=request.auth.cluster_id)
        run = runs.filter(pk=pk).first()
        if run is None:
            raise NotFound("No such import run.")
        return Response(UsageImportOutputSerializer(run, context={"request": request}).data)
