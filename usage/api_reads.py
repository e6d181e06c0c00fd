"""API: usage of an allocation or of a declared model, as the usage pages show it: a summary,
the daily series, the jobs (paginated, filterable by date) and the Annex XI summary.

Who sees what is the pages' rule: members of the allocation's organisation and staff allowed to
view allocations; anybody else gets 404, so the API does not reveal which allocations exist.
"""

from datetime import UTC, date, datetime, time, timedelta

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from allocations.models import model_key
from allocations.selectors import allocations_visible_to
from systems.models import ThresholdPolicy
from systems.selectors import policy_utilisation
from usage.models import UsageRecord
from usage.selectors import usage_jobs, usage_series, usage_totals

# The Annex XI summary is the one the pages render (usage.views): one definition of its figures.
from usage.views import Scope
from usage.views import _summary as annex_xi_summary


class TotalsOutput(serializers.Serializer):
    jobs = serializers.IntegerField()
    running_jobs = serializers.IntegerField()
    gpu_seconds = serializers.IntegerField()
    gpu_hours = serializers.FloatField()
    granted_gpu_hours = serializers.IntegerField()
    used_fraction = serializers.FloatField(allow_null=True)
    utilisation = serializers.FloatField()
    flop_estimate = serializers.FloatField()
    flop_upper_bound = serializers.FloatField()
    energy_kwh = serializers.FloatField()
    facility_energy_kwh = serializers.FloatField()
    co2e_kg = serializers.FloatField()
    energy_source = serializers.ChoiceField(choices=["measured", "estimated", "mixed"])
    first_start = serializers.DateTimeField(allow_null=True)
    last_end = serializers.DateTimeField(allow_null=True)


class AllocationRef(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    cluster = serializers.CharField(source="cluster.name")
    partition = serializers.CharField(source="partition.name")
    account = serializers.CharField()
    gpu_hours = serializers.IntegerField()


class SummaryOutput(serializers.Serializer):
    subject = serializers.CharField()
    model = serializers.CharField(allow_null=True)
    allocations = AllocationRef(many=True)
    totals = TotalsOutput()


class SeriesPointOutput(serializers.Serializer):
    day = serializers.DateField()
    gpu_hours = serializers.FloatField(help_text="Cumulative, at the end of the day (UTC).")
    flop_estimate = serializers.FloatField(help_text="Cumulative.")
    flop_upper_bound = serializers.FloatField(help_text="Cumulative.")


class JobOutput(serializers.ModelSerializer):
    cluster = serializers.CharField(source="cluster.name")
    partition = serializers.CharField(source="partition_name")
    energy_source = serializers.SerializerMethodField()

    class Meta:
        model = UsageRecord
        fields = [
            "job_id",
            "cluster",
            "account",
            "user",
            "partition",
            "job_name",
            "state",
            "running",
            "submit",
            "start",
            "end",
            "elapsed_seconds",
            "gpus",
            "nodes",
            "gpu_seconds",
            "energy_joules",
            "energy_source",
        ]

    def get_energy_source(self, record) -> str:
        return "measured" if record.energy_joules is not None else "estimated"


class AnnexAllocationOutput(serializers.Serializer):
    cluster = serializers.CharField()
    partition = serializers.CharField()
    accelerator = serializers.CharField()
    account = serializers.CharField()
    granted_gpu_hours = serializers.IntegerField()


class TrainingTimeOutput(serializers.Serializer):
    first_start = serializers.CharField(allow_null=True)
    last_end = serializers.CharField(allow_null=True)
    jobs = serializers.IntegerField()
    running_jobs = serializers.IntegerField()


class AnnexThresholdsOutput(serializers.Serializer):
    policy = serializers.CharField(allow_null=True)
    gpai_flop = serializers.FloatField()
    systemic_risk_flop = serializers.FloatField()


class AnnexXIOutput(serializers.Serializer):
    """Annex XI 1.2(d)-(e): compute (two significant figures), training time, energy."""

    subject = serializers.CharField()
    model = serializers.CharField(allow_null=True)
    allocations = AnnexAllocationOutput(many=True)
    generated_at = serializers.CharField()
    method = serializers.CharField()
    training_compute_flop = serializers.FloatField()
    training_compute_upper_bound_flop = serializers.FloatField()
    gpu_hours = serializers.FloatField()
    granted_gpu_hours = serializers.IntegerField()
    used_fraction = serializers.FloatField(allow_null=True)
    training_time = TrainingTimeOutput()
    energy_kwh = serializers.FloatField()
    energy_source = serializers.CharField()
    facility_energy_kwh = serializers.FloatField()
    co2e_kg = serializers.FloatField()
    thresholds = AnnexThresholdsOutput()


class DateRange(serializers.Serializer):
    # "from" is a Python keyword: the field is renamed below. A range that ends before it
    # starts is empty, not an error.
    start = serializers.DateField(required=False, help_text="First day (UTC), inclusive.")
    to = serializers.DateField(required=False, help_text="Last day (UTC), inclusive.")


DATE_PARAMETERS = [
    OpenApiParameter("from", OpenApiTypes.DATE, description="First day (UTC), inclusive."),
    OpenApiParameter("to", OpenApiTypes.DATE, description="Last day (UTC), inclusive."),
]
MODEL_PARAMETER = OpenApiParameter(
    "name", str, required=True, description="The declared model (case and spacing do not count)."
)


def _dates(request) -> tuple[date | None, date | None]:
    data = DateRange(
        data={
            key: value
            for key, value in (("start", request.query_params.get("from")),
                               ("to", request.query_params.get("to")))
            if value
        }
    )  # fmt: skip
    if not data.is_valid():
        errors = {("from" if k == "start" else k): v for k, v in data.errors.items()}
        raise serializers.ValidationError(errors)
    return data.validated_data.get("start"), data.validated_data.get("to")


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


class _UsageView(GenericAPIView):
    """One scope (an allocation or a model) read four ways."""

    # A view is one scope class (`scope()`, `subject`, `scope_parameters`) and one reading
    # class (`get()`, what it returns and its summary per subject); `_view` puts them together.
    serializer_class = SummaryOutput
    pagination_class = None
    # Rows come from the scope; this names the model for the schema's pagination parameters.
    queryset = UsageRecord.objects.none()
    parameters: tuple = ()
    responses: dict | None = None
    summaries: dict[str, str] = {}

    def scope(self, request, **kwargs) -> Scope:
        raise NotImplementedError

    def _visible(self, request):
        return allocations_visible_to(request.user).select_related("cluster__site", "partition")


class _AllocationScope:
    subject = "allocation"
    scope_parameters: tuple = ()

    def scope(self, request, pk: int) -> Scope:
        allocation = self._visible(request).filter(pk=pk).first()
        if allocation is None:
            raise NotFound("No such allocation.")
        return Scope(
            title=f"{allocation.project} ({allocation.cluster.name}:{allocation.account})",
            allocations=[allocation],
            records=UsageRecord.objects.filter(allocation=allocation),
            model_name=allocation.model_name,
        )


class _ModelScope:
    subject = "model"
    scope_parameters = (MODEL_PARAMETER,)

    def scope(self, request) -> Scope:
        name = request.query_params.get("name")
        if name is None:
            raise serializers.ValidationError({"name": ["Name the declared model."]})
        key = model_key(name)
        allocations = (
            list(self._visible(request).filter(model_key=key).order_by("id").distinct())
            if key
            else []
        )
        if not allocations:
            raise NotFound("No such model.")
        return Scope(
            title=f"Model {name}",
            allocations=allocations,
            records=UsageRecord.objects.filter(allocation__in=[a.pk for a in allocations]),
            model_name=name,
        )


def _totals(scope: Scope) -> dict:
    totals = usage_totals(records=scope.records, utilisation=policy_utilisation())
    granted = scope.granted_gpu_hours
    return {
        **totals.to_dict(),
        "first_start": totals.first_start,
        "last_end": totals.last_end,
        "granted_gpu_hours": granted,
        "used_fraction": totals.gpu_hours / granted if granted else None,
    }


class _Summary(_UsageView):
    summaries = {
        "allocation": "Usage of an allocation: totals against the grant",
        "model": "Usage of a declared model across the allocations I can see",
    }

    def get(self, request, **kwargs):
        scope = self.scope(request, **kwargs)
        data = {
            "subject": scope.title,
            "model": scope.model_name or None,
            "allocations": scope.allocations,
            "totals": _totals(scope),
        }
        return Response(SummaryOutput(data).data)


class _DatedPages(_UsageView):
    # A reading listed page by page and narrowed to a range of days (`from`, `to`): the
    # subclass names its serializer and gives `rows()`. (No docstring: the schema describes
    # every usage view with _UsageView's.)

    pagination_class = PageNumberPagination
    parameters = tuple(DATE_PARAMETERS)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "serializer_class" in cls.__dict__:
            cls.responses = {200: cls.serializer_class(many=True)}

    def rows(self, scope: Scope, first: date | None, last: date | None):
        raise NotImplementedError

    def get(self, request, **kwargs):
        scope = self.scope(request, **kwargs)
        first, last = _dates(request)
        page = self.paginator.paginate_queryset(self.rows(scope, first, last), request, view=self)
        return self.paginator.get_paginated_response(self.serializer_class(page, many=True).data)


class _Series(_DatedPages):
    serializer_class = SeriesPointOutput
    summaries = {
        "allocation": "Usage of an allocation per day (cumulative), paginated",
        "model": "Usage of a declared model per day (cumulative), paginated",
    }

    def rows(self, scope, first, last) -> list[dict]:
        return [
            {
                "day": point.day,
                "gpu_hours": point.gpu_hours,
                "flop_estimate": point.flop_estimate,
                "flop_upper_bound": point.flop_upper_bound,
            }
            for point in usage_series(records=scope.records, utilisation=policy_utilisation())
            if (first is None or point.day >= first) and (last is None or point.day <= last)
        ]


class _Jobs(_DatedPages):
    serializer_class = JobOutput
    summaries = {
        "allocation": "Jobs of an allocation, newest first, paginated",
        "model": "Jobs of a declared model, newest first, paginated",
    }

    def rows(self, scope, first, last):
        records = usage_jobs(records=scope.records)
        if first:
            records = records.filter(start__gte=_day_start(first))
        if last:
            records = records.filter(start__lt=_day_start(last + timedelta(days=1)))
        return records


class _Annex(_UsageView):
    serializer_class = AnnexXIOutput
    responses = {200: AnnexXIOutput}
    summaries = {
        "allocation": "Annex XI compute and energy summary of an allocation",
        "model": "Annex XI compute and energy summary of a declared model",
    }

    def get(self, request, **kwargs):
        scope = self.scope(request, **kwargs)
        policy = ThresholdPolicy.objects.in_force()
        totals = usage_totals(records=scope.records, utilisation=policy_utilisation(policy))
        return Response(AnnexXIOutput(annex_xi_summary(scope, totals, policy)).data)


def _view(name: str, scope: type, reading: type[_UsageView]) -> type[_UsageView]:
    """The view reading `scope` as `reading` does, documented for the API schema."""
    view = type(name, (scope, reading), {"__module__": __name__, "__qualname__": name})
    schema = {
        "tags": ["usage"],
        "summary": reading.summaries[scope.subject],
        "parameters": [*scope.scope_parameters, *reading.parameters],
    }
    if reading.responses is not None:  # else the serializer_class
        schema["responses"] = reading.responses
    return extend_schema(**schema)(view)


AllocationUsageView = _view("AllocationUsageView", _AllocationScope, _Summary)
AllocationSeriesView = _view("AllocationSeriesView", _AllocationScope, _Series)
AllocationJobsView = _view("AllocationJobsView", _AllocationScope, _Jobs)
AllocationAnnexView = _view("AllocationAnnexView", _AllocationScope, _Annex)
ModelUsageView = _view("ModelUsageView", _ModelScope, _Summary)
ModelSeriesView = _view("ModelSeriesView", _ModelScope, _Series)
ModelJobsView = _view("ModelJobsView", _ModelScope, _Jobs)
ModelAnnexView = _view("ModelAnnexView", _ModelScope, _Annex)
