from django.db.models import Prefetch
from rest_framework import permissions, viewsets

from systems.models import AccessModePartition, Call, Partition
from systems.selectors import access_modes_by_size
from systems.serializers import CallSerializer, PartitionSerializer


class CallViewSet(viewsets.ReadOnlyModelViewSet):
    """Calls that are open or closed (drafts stay private) with their access modes."""

    serializer_class = CallSerializer
    permission_classes = [permissions.AllowAny]
    filterset_fields = ["state"]
    lookup_field = "slug"

    def get_queryset(self):
        links = AccessModePartition.objects.select_related("partition__cluster").order_by(
            "partition__cluster__name", "partition__name"
        )
        modes = access_modes_by_size().prefetch_related(
            Prefetch("accessmodepartition_set", queryset=links)
        )
        return (
            Call.objects.exclude(state=Call.State.DRAFT)
            .prefetch_related(Prefetch("access_modes", queryset=modes))
            .order_by("-opens_at", "id")
        )


class PartitionViewSet(viewsets.ReadOnlyModelViewSet):
    """Systems and partitions, with what one scheduler GPU is and draws."""

    serializer_class = PartitionSerializer
    permission_classes = [permissions.AllowAny]
    queryset = Partition.objects.select_related("cluster__site").order_by("cluster__name", "name")
    filterset_fields = {"cluster__name": ["exact"]}
