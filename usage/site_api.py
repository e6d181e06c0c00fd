"""What a cluster's site agent (agent/hpcgate_agent.py) calls besides the usage import.

Both endpoints take a site token (`Authorization: SiteToken <key>`) and nothing else, and only for
the token's own cluster: the agent fetches the sacctmgr commands pending for its cluster and
reports which it applied. They live here, beside the site tokens, and call the export services
of the allocations app.
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from allocations.exports import ExportApplyError, export_mark_applied, export_pending
from allocations.models import SchedulerExport
from systems.models import Cluster
from usage.api import SiteTokenAuthentication
from usage.models import SiteToken


class IsSiteToken(permissions.BasePermission):
    message = "This endpoint takes a cluster's site token (Authorization: SiteToken <key>)."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, SiteToken)


class PendingExportOutput(serializers.ModelSerializer):
    cluster = serializers.CharField(source="cluster.name")
    content = serializers.CharField(
        help_text="A /bin/sh script of sacctmgr -i commands, one a line after its header."
    )
    checksum = serializers.CharField(help_text="SHA-256 of content; send it back when applied.")

    class Meta:
        model = SchedulerExport
        fields = ["id", "cluster", "format", "checksum", "created_at", "content"]


class PendingChangesOutput(serializers.Serializer):
    cluster = serializers.CharField()
    export = PendingExportOutput(
        allow_null=True, help_text="The commands to apply, or null when Slurm is up to date."
    )


class AppliedInput(serializers.Serializer):
    checksum = serializers.CharField(
        max_length=64, help_text="The checksum of the export the agent applied."
    )


class AppliedOutput(serializers.ModelSerializer):
    cluster = serializers.CharField(source="cluster.name")
    applied_by_token = serializers.CharField(source="applied_by_token.name")

    class Meta:
        model = SchedulerExport
        fields = ["id", "cluster", "checksum", "created_at", "applied_at", "applied_by_token"]


class _SiteAgentApi(APIView):
    authentication_classes = [SiteTokenAuthentication]
    permission_classes = [IsSiteToken]

    def token_for(self, cluster_name: str) -> SiteToken:
        token: SiteToken = self.request.auth
        if token.cluster.name != cluster_name:
            raise PermissionDenied(f"This site token is for cluster {token.cluster.name} only.")
        return token


class PendingChangesApi(_SiteAgentApi):
    @extend_schema(
        tags=["site agent"],
        summary="The sacctmgr commands pending for the cluster, since the last applied export",
        description=(
            "Made for the cluster's site agent and kept in the export history. Asked again "
            "before it is reported applied, the same export comes back unless the allocations "
            "changed meanwhile. Only the cluster's own site token."
        ),
        responses={200: PendingChangesOutput},
    )
    def get(self, request, cluster: str):
        self.token_for(cluster)
        found = Cluster.objects.filter(name=cluster).first()
        if found is None:
            raise NotFound(f"No cluster {cluster}.")
        export = export_pending(cluster=found)
        return Response(
            {
                "cluster": found.name,
                "export": PendingExportOutput(export).data if export is not None else None,
            }
        )


class ExportAppliedApi(_SiteAgentApi):
    @extend_schema(
        tags=["site agent"],
        summary="Report that the site agent applied an export",
        description=(
            "The export becomes the baseline of the next pending changes; the history records "
            "when and with which token. Reporting it again changes nothing. 409 when a newer "
            "export was applied since. Only the site token of the export's cluster."
        ),
        request=AppliedInput,
        responses={
            200: AppliedOutput,
            400: OpenApiResponse(description="The checksum is not the export's."),
            403: OpenApiResponse(description="Another cluster's export, or not the agent's."),
            409: OpenApiResponse(description="A newer export has been applied since."),
        },
    )
    def post(self, request, pk: int):
        token: SiteToken = request.auth
        data = AppliedInput(data=request.data)
        data.is_valid(raise_exception=True)
        export = SchedulerExport.objects.filter(pk=pk).select_related("cluster").first()
        if export is None:
            raise NotFound(f"No export {pk}.")
        self.token_for(export.cluster.name if export.cluster_id else "")
        try:
            export = export_mark_applied(
                export_id=pk, site_token=token, checksum=data.validated_data["checksum"]
            )
        except ExportApplyError as error:
            if error.reason == ExportApplyError.CONFLICT:
                return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
            if error.reason == ExportApplyError.CHECKSUM:
                raise ValidationError({"checksum": [str(error)]}) from error
            raise PermissionDenied(str(error)) from error
        return Response(AppliedOutput(export).data)
