from rest_framework import serializers

from systems.models import AccessMode, AccessModePartition, Call, Partition


class PartitionSerializer(serializers.ModelSerializer):
    cluster = serializers.CharField(source="cluster.name")
    site = serializers.CharField(source="cluster.site.name")
    country = serializers.CharField(source="cluster.site.country")
    peak_flops = serializers.FloatField(help_text="Peak dense BF16 FLOP/s per scheduler GPU.")
    pue = serializers.DecimalField(source="cluster.site.pue", max_digits=4, decimal_places=2)
    grid_kg_co2e_per_kwh = serializers.DecimalField(
        source="cluster.site.grid_kg_co2e_per_kwh", max_digits=6, decimal_places=4
    )

    class Meta:
        model = Partition
        fields = [
            "id",
            "cluster",
            "name",
            "site",
            "country",
            "accelerator",
            "gpus_per_node",
            "nodes",
            "peak_tflops",
            "peak_flops",
            "power_watts",
            "pue",
            "grid_kg_co2e_per_kwh",
        ]


class EligiblePartitionSerializer(serializers.ModelSerializer):
    cluster = serializers.CharField(source="partition.cluster.name")
    partition = serializers.CharField(source="partition.name")

    class Meta:
        model = AccessModePartition
        fields = ["cluster", "partition", "capacity_gpu_hours"]


class AccessModeSerializer(serializers.ModelSerializer):
    partitions = EligiblePartitionSerializer(source="accessmodepartition_set", many=True)

    class Meta:
        model = AccessMode
        fields = [
            "id",
            "kind",
            "description",
            "min_gpu_hours",
            "max_gpu_hours",
            "durations_months",
            "decision_working_days",
            "cutoff_at",
            "partitions",
        ]


class CallSerializer(serializers.ModelSerializer):
    access_modes = AccessModeSerializer(many=True)
    is_open = serializers.BooleanField()

    class Meta:
        model = Call
        fields = [
            "id",
            "slug",
            "title",
            "description",
            "state",
            "opens_at",
            "closes_at",
            "is_open",
            "access_modes",
        ]
