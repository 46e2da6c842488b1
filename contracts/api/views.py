"""The registry API's views: reads, the deploy gate, proposals and reviews, all via services.

Writes go through ``contracts.services`` exactly as the admin's do, as the token's owner;
the gate is ``contracts.gate.evaluate`` run over the declarations the caller posts.
"""

from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.renderers import OpenApiJsonRenderer
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from drf_spectacular.views import SpectacularAPIView
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from contract_core.tracing import TRACE_HEADER, trace_id_for
from contracts import exports, services
from contracts.api import errors, schema  # noqa: F401 - schema registers its extensions
from contracts.api import serializers as s
from contracts.api.authentication import RegistryTokenAuthentication, StaffSessionAuthentication
from contracts.api.models import Scope
from contracts.api.permissions import HasScope, client_restriction
from contracts.api.throttling import TokenRateThrottle
from contracts.codebase import declared_by, surface_document
from contracts.gate import evaluate
from contracts.models import Client, ContractVersion, Endpoint, FieldRule, MajorVersion, Status
from contracts.serving import load_snapshot

READ = {"*": (Scope.READ,)}


class Pagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


class RegistryAPI:
    """What every registry API view shares: auth, scopes, throttles, errors, JSON."""

    authentication_classes = [RegistryTokenAuthentication, StaffSessionAuthentication]
    permission_classes = [HasScope]
    throttle_classes = [TokenRateThrottle]
    parser_classes = [errors.LimitedJSONParser]
    pagination_class = Pagination
    required_scopes = READ

    def get_renderers(self):
        # The browsable API is for staff signed in to the admin; everyone else gets JSON.
        request = getattr(self, "request", None)
        user = getattr(getattr(request, "_request", request), "user", None)
        if user is not None and user.is_authenticated and user.is_staff:
            return [JSONRenderer(), BrowsableAPIRenderer()]
        return [JSONRenderer()]

    def get_exception_handler(self):
        return errors.exception_handler

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response[TRACE_HEADER] = trace_id_for(request)
        response.setdefault("Cache-Control", "no-store")
        return response

    def restricted(self, queryset, path: str):
        client = client_restriction(self.request)
        return queryset if client is None else queryset.filter(**{path: client})


def _validated(serializer_class, data):
    """The serializer over ``data``, valid (or a 400 naming the fields at fault)."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer


def _filters(serializer_class, request) -> dict:
    serializer = _validated(serializer_class, request.query_params)
    return {k: v for k, v in serializer.validated_data.items() if v not in (None, "")}


class ClientFilter(serializers.Serializer):
    client = serializers.SlugField(required=False, max_length=32)

    def validate_client(self, value: str) -> str:
        if value and not Client.objects.filter(name=value).exists():
            raise serializers.ValidationError(f"unknown client {value!r}")
        return value


class EndpointFilter(ClientFilter):
    endpoint = serializers.SlugField(required=False, max_length=64)

    def validate(self, attrs: dict) -> dict:
        name = attrs.get("endpoint")
        if name:
            endpoints = Endpoint.objects.filter(name=name)
            if attrs.get("client"):
                endpoints = endpoints.filter(client__name=attrs["client"])
            if not endpoints.exists():
                raise serializers.ValidationError({"endpoint": f"unknown endpoint {name!r}"})
        return attrs


class VersionFilter(EndpointFilter):
    major = serializers.IntegerField(required=False, min_value=1, max_value=999_999)
    status = serializers.ChoiceField(required=False, choices=Status.values)


def _query(name: str, description: str, kind=OpenApiTypes.STR, enum=None) -> OpenApiParameter:
    return OpenApiParameter(
        name, kind, OpenApiParameter.QUERY, required=False, description=description, enum=enum
    )


CLIENT_Q = _query("client", "Only this client's (an unknown client is a 400).")
ENDPOINT_Q = _query("endpoint", "Only this endpoint's (an unknown endpoint is a 400).")


class ClientViewSet(RegistryAPI, viewsets.ReadOnlyModelViewSet):
    """The clients (mobile, web, partner) and their endpoints."""

    serializer_class = s.ClientSerializer
    lookup_field = "name"
    lookup_value_regex = "[a-z0-9][a-z0-9_-]{0,31}"

    def get_queryset(self):
        return self.restricted(Client.objects.prefetch_related("endpoints"), "name")

    @extend_schema(
        summary="The surface's OpenAPI document, as this registry's code would serve it",
        responses={200: OpenApiTypes.OBJECT},
    )
    @action(detail=True, url_path=r"v(?P<major>[1-9][0-9]{0,5})/openapi")
    def openapi(self, request, name: str, major: str):
        client = self.get_object()
        document = surface_document(load_snapshot(), client.name, int(major))
        if document is None:
            raise exceptions.NotFound(f"{client.name} serves nothing under v{major}.")
        return Response(document)


@extend_schema_view(list=extend_schema(parameters=[CLIENT_Q]))
class EndpointViewSet(RegistryAPI, viewsets.ReadOnlyModelViewSet):
    """The endpoints of every client, with their cache policy and majors."""

    serializer_class = s.EndpointSerializer

    def get_queryset(self):
        endpoints = Endpoint.objects.select_related("client").prefetch_related("majors")
        endpoints = self.restricted(endpoints, "client__name")
        if self.action == "list":
            wanted = _filters(ClientFilter, self.request)
            if "client" in wanted:
                endpoints = endpoints.filter(client__name=wanted["client"])
        return endpoints


@extend_schema_view(list=extend_schema(parameters=[CLIENT_Q, ENDPOINT_Q]))
class MajorViewSet(RegistryAPI, viewsets.ReadOnlyModelViewSet):
    """Major versions (each its own URL) with their lifecycle: live, deprecated, sunset."""

    serializer_class = s.MajorSerializer

    def get_queryset(self):
        majors = (
            MajorVersion.objects.exclude(number=None)
            .select_related("endpoint__client")
            .prefetch_related("versions")
        )
        majors = self.restricted(majors, "endpoint__client__name")
        if self.action == "list":
            wanted = _filters(EndpointFilter, self.request)
            if "client" in wanted:
                majors = majors.filter(endpoint__client__name=wanted["client"])
            if "endpoint" in wanted:
                majors = majors.filter(endpoint__name=wanted["endpoint"])
        return majors


@extend_schema_view(
    list=extend_schema(
        parameters=[
            CLIENT_Q,
            ENDPOINT_Q,
            _query("major", "Only this major's versions.", OpenApiTypes.INT),
            _query("status", "Only versions in this status.", enum=Status.values),
        ]
    ),
)
class VersionViewSet(RegistryAPI, viewsets.ReadOnlyModelViewSet):
    """Contract versions: status, rules, fingerprint, classified diff and audit history."""

    required_scopes = {**READ, "approve": (Scope.REVIEW,), "reject": (Scope.REVIEW,)}
    lookup_value_regex = "[0-9]{1,18}"

    def get_serializer_class(self):
        if self.action == "list":
            return s.VersionSerializer
        if self.action == "approve":
            return s.ApproveSerializer
        if self.action == "reject":
            return s.RejectSerializer
        return s.VersionDetailSerializer

    def get_queryset(self):
        versions = ContractVersion.objects.select_related(
            "major__endpoint__client", "author", "approver"
        ).prefetch_related(
            Prefetch("rules", queryset=FieldRule.objects.order_by("section", "position", "id"))
        )
        versions = self.restricted(versions, "major__endpoint__client__name")
        if self.action == "list":
            wanted = _filters(VersionFilter, self.request)
            lookups = {
                "client": "major__endpoint__client__name",
                "endpoint": "major__endpoint__name",
                "major": "major__number",
                "status": "status",
            }
            versions = versions.filter(**{lookups[k]: v for k, v in wanted.items()})
        return versions

    @extend_schema(
        summary="The version's JSON Schema (as `contracts export` writes it)",
        responses={200: OpenApiTypes.OBJECT},
    )
    @action(detail=True, url_path="schema")
    def json_schema(self, request, pk: str):
        version = self.get_object()
        if version.shape is None:
            raise exceptions.NotFound("This version has no shape yet: it is a draft.")
        return Response(exports.version_schema(version))

    @extend_schema(
        summary="Approve a submitted version (release managers, `review` scope)",
        request=s.ApproveSerializer,
        responses={200: s.VersionDetailSerializer},
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk: str):
        version = self.get_object()
        body = self._review_body(s.ApproveSerializer)
        self._may_review(version, "approve")
        if version.author_id == request.user.pk:
            raise exceptions.PermissionDenied("nobody approves a version they authored")
        services.Approve(request.user, version, comment=body["comment"]).execute()
        return self._detail(version)

    @extend_schema(
        summary="Reject a submitted version with a reason (`review` scope)",
        request=s.RejectSerializer,
        responses={200: s.VersionDetailSerializer},
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, pk: str):
        version = self.get_object()
        body = self._review_body(s.RejectSerializer)
        self._may_review(version, "reject")
        services.Reject(request.user, version, comment=body["comment"]).execute()
        return self._detail(version)

    def _review_body(self, serializer_class) -> dict:
        return _validated(serializer_class, self.request.data).validated_data

    def _may_review(self, version: ContractVersion, verb: str) -> None:
        if not services.is_release_manager(self.request.user):
            raise exceptions.PermissionDenied(f"only release managers {verb} contract versions")

    def _detail(self, version: ContractVersion) -> Response:
        fresh = self.get_queryset().get(pk=version.pk)
        return Response(s.VersionDetailSerializer(fresh).data)


class CheckView(RegistryAPI, APIView):
    """The deploy gate over HTTP: the same findings, in the same JSON, as `contracts check`."""

    required_scopes = {"*": (Scope.CHECK,)}

    @extend_schema(
        summary="Judge the posted declarations against the registry (`contracts check`)",
        request=s.CheckSerializer,
        responses={200: s.CheckResultSerializer},
    )
    def post(self, request):
        serializer = _validated(s.CheckSerializer, request.data)
        with declared_by(serializer.specs()):
            findings = evaluate()
        client = client_restriction(request)
        if client is not None:
            findings = [finding for finding in findings if finding.client == client]
        return Response({"ok": not findings, "findings": [f.as_dict() for f in findings]})


class ProposalView(RegistryAPI, APIView):
    """A proposal over HTTP: the posted declaration's shape as a submitted version."""

    required_scopes = {"*": (Scope.PROPOSE,)}

    @extend_schema(
        summary="Record the posted declaration's shape for review (`contracts propose`)",
        request=s.ProposeSerializer,
        responses={201: s.ProposalResultSerializer},
    )
    def post(self, request):
        serializer = _validated(s.ProposeSerializer, request.data)
        spec = serializer.spec()
        restricted = client_restriction(request)
        if restricted is not None and restricted != spec.client:
            raise exceptions.PermissionDenied(f"this token is for {restricted} contracts only")
        if not services.can_edit_client(request.user, spec.client):
            raise exceptions.PermissionDenied(
                f"{request.user.get_username()} may not edit {spec.client} contracts"
            )
        proposal = services.ProposeFromCode(
            request.user,
            spec.client,
            spec.name,
            major=serializer.validated_data["major"],
            remaps=serializer.validated_data["remaps"],
        )
        with declared_by({spec.key: spec}):
            version = proposal.execute()
        fresh = (
            ContractVersion.objects.select_related("major__endpoint__client", "author", "approver")
            .prefetch_related("rules")
            .get(pk=version.pk)
        )
        body = {
            "version": s.VersionDetailSerializer(fresh).data,
            "dropped": proposal.dropped,
            "changes": services.serialise_changes(proposal.changes),
        }
        return Response(body, status=status.HTTP_201_CREATED)


class ExportView(RegistryAPI, APIView):
    """Every approved version's JSON Schema, as `contracts export` prints it."""

    @extend_schema(
        summary="JSON Schemas keyed by client, endpoint and version (`contracts export`)",
        parameters=[_query("includeRetired", "Retired versions too.", OpenApiTypes.BOOL)],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        flag = serializers.BooleanField(required=False, default=False)
        try:
            include_retired = flag.run_validation(request.query_params.get("includeRetired", False))
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"includeRetired": exc.detail}) from None
        document = exports.schema_document(
            include_retired=include_retired, client=client_restriction(request)
        )
        return Response(document)


class SchemaView(SpectacularAPIView):
    """This API's own OpenAPI document (drf-spectacular), public like any API reference."""

    authentication_classes: list = []
    permission_classes: list = []
    renderer_classes = [OpenApiJsonRenderer]
