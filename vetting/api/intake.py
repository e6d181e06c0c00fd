import django_filters
from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser
from rest_framework.response import Response

from core.api import ErrorSerializer, error_response
from core.filters import IdFilter
from core.parsers import JSONParser, MultiPartParser
from vetting.models import Application
from vetting.selectors import intake as selectors
from vetting.serializers import (
    ApplicationCreateJsonSerializer,
    ApplicationCreateSerializer,
    ApplicationDraftJsonSerializer,
    ApplicationDraftSerializer,
    ApplicationSerializer,
    WithdrawSerializer,
)
from vetting.services import intake as services

INVALID = OpenApiResponse(ErrorSerializer, description="What still has to be fixed, per field.")
CONFLICT = OpenApiResponse(
    ErrorSerializer, description="The application's state does not allow this."
)


def _invalid(exc: services.ApplicationInvalid) -> Response:
    return error_response(
        "The application is not complete yet; see the messages per field.", 400, exc.errors
    )


def _conflict(exc: services.TransitionError) -> Response:
    return error_response(str(exc), status.HTTP_409_CONFLICT)


class ApplicationFilter(django_filters.FilterSet):
    """Plain numbers: an id the caller cannot see gives an empty list, exactly as an id that
    does not exist, so the filters reveal nothing."""

    state = django_filters.ChoiceFilter(choices=Application.State.choices)
    organisation = IdFilter(field_name="organisation_id")
    call = IdFilter(field_name="call_id")

    class Meta:
        model = Application
        fields = ["state", "organisation", "call"]


@extend_schema_view(
    list=extend_schema(summary="Applications of my organisations"),
    retrieve=extend_schema(summary="One application, with its estimate and history"),
)
@extend_schema(tags=["applications"])
class ApplicationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Applications of the organisations the caller belongs to; anybody else's are 404.

    Drafts are saved with whatever is known; `submit` checks everything with the same rules
    and messages as the web form.
    """

    serializer_class = ApplicationSerializer
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    filterset_class = ApplicationFilter

    def get_queryset(self):
        return selectors.applications_visible_to(self.request.user).prefetch_related(
            "resources__partition__cluster", "events"
        )

    def get_serializer_context(self):
        # Lists skip the live estimate of drafts, so their query count stays flat.
        return {**super().get_serializer_context(), "many": self.action == "list"}

    def _output(self, application, code=status.HTTP_200_OK) -> Response:
        application = self.get_queryset().get(pk=application.pk)
        return Response(self.get_serializer(application).data, status=code)

    @extend_schema(
        summary="Start a draft",
        request={
            "application/json": ApplicationCreateJsonSerializer,
            "multipart/form-data": ApplicationCreateSerializer,
        },
        responses={201: ApplicationSerializer, 400: INVALID, 409: CONFLICT},
    )
    def create(self, request):
        serializer = ApplicationCreateSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        arguments = serializer.service_arguments()
        organisation = arguments["fields"].pop("organisation")
        try:
            with transaction.atomic():
                application = services.application_create(
                    user=request.user,
                    organisation=organisation,
                    access_mode=arguments.pop("access_mode"),
                )
                services.application_save_draft(
                    application=application, actor=request.user, **arguments
                )
        except services.ApplicationInvalid as exc:
            return _invalid(exc)
        except services.TransitionError as exc:
            return _conflict(exc)
        return self._output(application, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Save a draft (only the fields sent change)",
        request={
            "application/json": ApplicationDraftJsonSerializer,
            "multipart/form-data": ApplicationDraftSerializer,
        },
        responses={200: ApplicationSerializer, 400: INVALID, 409: CONFLICT},
    )
    def partial_update(self, request, pk=None):
        application = self.get_object()
        serializer = ApplicationDraftSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        try:
            services.application_save_draft(
                application=application, actor=request.user, **serializer.service_arguments()
            )
        except services.ApplicationInvalid as exc:
            return _invalid(exc)
        except services.TransitionError as exc:
            return _conflict(exc)
        return self._output(application)

    @extend_schema(
        summary="Submit a complete draft",
        request=None,
        responses={200: ApplicationSerializer, 400: INVALID, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        application = self.get_object()
        try:
            services.application_submit(application=application, actor=request.user)
        except services.ApplicationInvalid as exc:
            return _invalid(exc)
        except services.TransitionError as exc:
            return _conflict(exc)
        return self._output(application)

    @extend_schema(
        summary="Withdraw the application (until a decision)",
        request=WithdrawSerializer,
        responses={200: ApplicationSerializer, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        application = self.get_object()
        serializer = WithdrawSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            services.application_withdraw(
                application=application,
                actor=request.user,
                reason=serializer.validated_data["reason"],
            )
        except services.TransitionError as exc:
            return _conflict(exc)
        return self._output(application)
