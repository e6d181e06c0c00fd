from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from organisations.models import Organisation
from systems.models import AccessMode
from vetting import rules
from vetting.models import DRAFT_FIELDS, Application, ApplicationEvent, ApplicationResource
from vetting.selectors import intake as selectors


class ResourceSerializer(serializers.ModelSerializer):
    cluster = serializers.CharField(source="partition.cluster.name", read_only=True)
    partition_name = serializers.CharField(source="partition.name", read_only=True)

    class Meta:
        model = ApplicationResource
        fields = ["partition", "cluster", "partition_name", "gpu_hours"]
        extra_kwargs = {"partition": {"queryset": None, "read_only": True}}


class ResourceInputSerializer(serializers.Serializer):
    partition = serializers.IntegerField(help_text="Partition id (see /api/v1/partitions/).")
    gpu_hours = serializers.IntegerField(
        min_value=0, allow_null=True, help_text="0 or null removes the request."
    )


class EthicsAnswerSerializer(serializers.Serializer):
    answer = serializers.BooleanField(allow_null=True)
    explanation = serializers.CharField(allow_blank=True, required=False, default="")


class EventSerializer(serializers.ModelSerializer):
    """The audit trail as applicants see it: never who did it."""

    class Meta:
        model = ApplicationEvent
        fields = ["from_state", "to_state", "at", "public_note"]


class EstimateTotalSerializer(serializers.Serializer):
    gpu_hours = serializers.IntegerField()
    utilisation = serializers.FloatField()
    flop_hardware = serializers.FloatField(allow_null=True)
    flop_architecture = serializers.FloatField(allow_null=True)
    flop_upper_bound = serializers.FloatField(allow_null=True)
    flop_best = serializers.FloatField()
    relative_gap = serializers.FloatField(allow_null=True)
    gap_exceeds_tolerance = serializers.BooleanField()
    classification = serializers.CharField()
    is_modification = serializers.BooleanField()
    modification_threshold = serializers.FloatField(allow_null=True)
    modification_makes_provider = serializers.BooleanField(allow_null=True)
    energy_kwh = serializers.FloatField(allow_null=True)
    facility_energy_kwh = serializers.FloatField(allow_null=True)
    co2e_kg = serializers.FloatField(allow_null=True)


class EstimatePartitionSerializer(serializers.Serializer):
    partition = serializers.CharField()
    gpu_hours = serializers.IntegerField()
    flop_hardware = serializers.FloatField(allow_null=True)
    flop_upper_bound = serializers.FloatField(allow_null=True)
    energy_kwh = serializers.FloatField(allow_null=True)
    facility_energy_kwh = serializers.FloatField(allow_null=True)
    co2e_kg = serializers.FloatField(allow_null=True)


class EstimateSerializer(serializers.Serializer):
    policy_version = serializers.IntegerField(allow_null=True)
    total = EstimateTotalSerializer(allow_null=True)
    partitions = EstimatePartitionSerializer(many=True)
    classification = serializers.CharField()
    required_commitments = serializers.ListField(child=serializers.CharField())
    problem = serializers.CharField(allow_null=True)
    computed_at = serializers.DateTimeField(required=False)


class ApplicationSerializer(serializers.ModelSerializer):
    """An application as its organisation's members see it."""

    resources = ResourceSerializer(many=True, read_only=True)
    ethics = serializers.DictField(child=EthicsAnswerSerializer())
    estimate = serializers.SerializerMethodField(
        help_text="Frozen at submission. For a draft it is computed from what is saved, "
        "except in lists, where drafts show null."
    )
    history = EventSerializer(source="events", many=True, read_only=True)
    technical_annex = serializers.SerializerMethodField()

    class Meta:
        model = Application
        fields = [
            "id",
            "organisation",
            "call",
            "access_mode",
            "state",
            "created_at",
            "updated_at",
            "submitted_at",
            *DRAFT_FIELDS,
            "resources",
            "technical_annex",
            "technical_annex_name",
            "unparsed_input",
            "estimate",
            "history",
        ]
        read_only_fields = fields

    @extend_schema_field(EstimateSerializer(allow_null=True))
    def get_estimate(self, application: Application) -> dict | None:
        if application.estimate_snapshot or self.context.get("many"):
            return application.estimate_snapshot
        return selectors.application_estimate(application)

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_technical_annex(self, application: Application) -> str | None:
        if not application.technical_annex:
            return None
        from django.urls import reverse

        url = reverse("vetting:annex", args=[application.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url


class ApplicationDraftSerializer(serializers.ModelSerializer):
    """What a draft save may change; every field is optional."""

    access_mode = serializers.PrimaryKeyRelatedField(
        queryset=AccessMode.objects.all(), required=False
    )
    ethics = serializers.DictField(child=EthicsAnswerSerializer(), required=False)
    commitments = serializers.ListField(
        child=serializers.ChoiceField(choices=rules.COMMITMENTS), required=False
    )
    resources = ResourceInputSerializer(many=True, required=False)
    technical_annex = serializers.FileField(
        required=False, help_text="PDF of at most 10 MB; send as multipart/form-data."
    )

    class Meta:
        model = Application
        fields = ["access_mode", *DRAFT_FIELDS, "resources", "technical_annex"]
        extra_kwargs = {name: {"required": False} for name in DRAFT_FIELDS}

    def validate_ethics(self, value: dict) -> dict:
        unknown = set(value) - set(rules.ETHICS_KEYS)
        if unknown:
            raise serializers.ValidationError(
                f"Unknown questions: {', '.join(sorted(unknown))}. "
                f"The questions are: {', '.join(rules.ETHICS_KEYS)}."
            )
        return value

    def validate_technical_annex(self, upload):
        problem = rules.upload_problem(upload)
        if problem:
            raise serializers.ValidationError(problem)
        return upload

    def service_arguments(self) -> dict:
        """Keyword arguments for `application_save_draft`."""
        data = dict(self.validated_data)
        resources = data.pop("resources", None)
        return {
            "access_mode": data.pop("access_mode", None),
            "annex": data.pop("technical_annex", None),
            "resources": None
            if resources is None
            else {row["partition"]: row["gpu_hours"] for row in resources},
            "fields": data,
        }


class ApplicationCreateSerializer(ApplicationDraftSerializer):
    organisation = serializers.PrimaryKeyRelatedField(queryset=Organisation.objects.none())
    access_mode = serializers.PrimaryKeyRelatedField(queryset=AccessMode.objects.all())

    class Meta(ApplicationDraftSerializer.Meta):
        fields = ["organisation", *ApplicationDraftSerializer.Meta.fields]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from organisations.selectors import organisations_of

        request = self.context.get("request")
        if request is not None:
            self.fields["organisation"].queryset = organisations_of(request.user)


class ApplicationDraftJsonSerializer(ApplicationDraftSerializer):
    """A draft save as JSON: every field but the annex, which is uploaded as multipart."""

    class Meta(ApplicationDraftSerializer.Meta):
        fields = [f for f in ApplicationDraftSerializer.Meta.fields if f != "technical_annex"]


class ApplicationCreateJsonSerializer(ApplicationCreateSerializer):
    class Meta(ApplicationCreateSerializer.Meta):
        fields = [f for f in ApplicationCreateSerializer.Meta.fields if f != "technical_annex"]


class WithdrawSerializer(serializers.Serializer):
    reason = serializers.CharField(allow_blank=True, required=False, default="", max_length=2000)
