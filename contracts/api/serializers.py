"""What the registry API accepts and returns: DRF serializers, camelCase like the envelope."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from contract_core import declarations
from contract_core.clients import CLIENTS
from contract_core.schema import SCALAR_TYPES, EndpointSpec
from contracts import services
from contracts.models import Client, ContractVersion, Endpoint, MajorVersion, Status

NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
SLUG = r"^[a-z0-9][a-z0-9_-]{0,63}$"
MAX_FIELDS = 500
MAX_ENDPOINTS = 100

# -- Requests: the code's declarations (contract_core.declarations) -----------------------------


class KindSerializer(serializers.Serializer):
    """A declared type: a scalar (with its types and enum), an object, or a list."""

    type = serializers.ChoiceField(choices=["scalar", "object", "array"])
    types = serializers.ListField(
        child=serializers.ChoiceField(choices=list(SCALAR_TYPES)),
        min_length=1,
        max_length=len(SCALAR_TYPES),
        required=False,
    )
    enum = serializers.ListField(
        child=serializers.CharField(max_length=200, trim_whitespace=False),
        max_length=500,
        required=False,
        allow_null=True,
    )
    extensible = serializers.BooleanField(required=False, default=False)

    def get_fields(self):
        fields = super().get_fields()
        # Recursive: an object's fields and a list's items are declarations themselves.
        fields["fields"] = FieldDeclarationSerializer(
            many=True, required=False, max_length=MAX_FIELDS
        )
        fields["items"] = KindSerializer(required=False)
        return fields

    def validate(self, attrs: dict) -> dict:
        kind = attrs["type"]
        if kind == "scalar" and not attrs.get("types"):
            raise serializers.ValidationError({"types": "a scalar names its types"})
        if kind == "object" and "fields" not in attrs:
            raise serializers.ValidationError({"fields": "an object lists its fields"})
        if kind == "array":
            items = attrs.get("items")
            if items is None:
                raise serializers.ValidationError({"items": "a list declares its items"})
            if items["type"] == "array":
                raise serializers.ValidationError({"items": "lists of lists are not supported"})
        if kind == "object":
            _unique_names(attrs["fields"], "fields")
        return attrs


class FieldDeclarationSerializer(serializers.Serializer):
    name = serializers.RegexField(NAME, max_length=64)
    kind = KindSerializer()
    nullable = serializers.BooleanField(required=False, default=False)
    alwaysPresent = serializers.BooleanField(required=False, default=True)


class ObjectDeclarationSerializer(serializers.Serializer):
    fields = FieldDeclarationSerializer(many=True, max_length=MAX_FIELDS)

    def validate(self, attrs: dict) -> dict:
        _unique_names(attrs["fields"], "fields")
        return attrs


class SectionDeclarationSerializer(serializers.Serializer):
    name = serializers.RegexField(NAME, max_length=64)
    kind = serializers.ChoiceField(choices=["object", "list"])
    dependency = serializers.RegexField(NAME, max_length=64)
    nullable = serializers.BooleanField(required=False, default=False)
    source = ObjectDeclarationSerializer()


class EndpointDeclarationSerializer(serializers.Serializer):
    """One endpoint the checked-out code serves: its sections and their source schemas."""

    client = serializers.RegexField(SLUG, max_length=32)
    name = serializers.RegexField(SLUG, max_length=64)
    description = serializers.CharField(
        max_length=300, required=False, allow_blank=True, default=""
    )
    sections = SectionDeclarationSerializer(many=True, min_length=1, max_length=50)

    def validate(self, attrs: dict) -> dict:
        _unique_names(attrs["sections"], "sections")
        return attrs


def _unique_names(items: list[dict], field: str) -> None:
    seen: set[str] = set()
    for index, item in enumerate(items):
        if item["name"] in seen:
            raise serializers.ValidationError(
                {field: f"[{index}] {item['name']!r} is declared twice"}
            )
        seen.add(item["name"])


class CheckSerializer(serializers.Serializer):
    """What ``contracts check --registry`` posts: every endpoint the checkout declares."""

    endpoints = EndpointDeclarationSerializer(many=True, max_length=MAX_ENDPOINTS)

    def validate_endpoints(self, value: list[dict]) -> list[dict]:
        keys = [(item["client"], item["name"]) for item in value]
        for index, key in enumerate(keys):
            if keys.index(key) != index:
                raise serializers.ValidationError(f"[{index}] {key[0]}/{key[1]} is declared twice")
        return value

    def specs(self) -> dict[tuple[str, str], EndpointSpec]:
        specs = [declarations.load(item) for item in self.validated_data["endpoints"]]
        return {spec.key: spec for spec in specs}


class ProposedDeclarationSerializer(EndpointDeclarationSerializer):
    client = serializers.ChoiceField(choices=list(CLIENTS))


class ProposeSerializer(serializers.Serializer):
    """What ``contracts propose --registry`` posts: one endpoint's declaration, and the major."""

    declaration = ProposedDeclarationSerializer()
    major = serializers.IntegerField(
        min_value=1, max_value=999_999, required=False, allow_null=True, default=None
    )
    remaps = serializers.ListField(
        child=serializers.CharField(max_length=300),
        max_length=200,
        required=False,
        default=list,
        help_text="SECTION.SOURCE=NEW_SOURCE, as `contracts propose --remap`.",
    )

    def validate_remaps(self, value: list[str]) -> dict[tuple[str, str], str]:
        try:
            return services.parse_remaps(value)
        except services.ActionError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate_declaration(self, value: dict) -> dict:
        if not Client.objects.filter(name=value["client"]).exists():
            raise serializers.ValidationError({"client": f"unknown client {value['client']!r}"})
        return value

    def spec(self) -> EndpointSpec:
        return declarations.load(self.validated_data["declaration"])


class ApproveSerializer(serializers.Serializer):
    comment = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class RejectSerializer(serializers.Serializer):
    comment = serializers.CharField(max_length=2000, help_text="Why the version is rejected.")


# -- Responses ----------------------------------------------------------------------------------


class ClientSerializer(serializers.ModelSerializer):
    displayName = serializers.CharField(source="display_name")
    endpoints = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")

    class Meta:
        model = Client
        fields = ["name", "displayName", "endpoints"]


class CachePolicySerializer(serializers.ModelSerializer):
    scope = serializers.CharField(source="cache_scope")
    ttlSeconds = serializers.IntegerField(source="cache_ttl_seconds")
    jitterPercent = serializers.IntegerField(source="cache_jitter_percent")
    staleGraceSeconds = serializers.IntegerField(source="cache_stale_grace_seconds")

    class Meta:
        model = Endpoint
        fields = ["scope", "ttlSeconds", "jitterPercent", "staleGraceSeconds"]


class EndpointSerializer(serializers.ModelSerializer):
    client = serializers.CharField(source="client.name")
    cache = CachePolicySerializer(source="*")
    majors = serializers.SerializerMethodField()

    class Meta:
        model = Endpoint
        fields = ["id", "client", "name", "description", "cache", "majors"]

    def get_majors(self, endpoint: Endpoint) -> list[int]:
        # A major opened by a draft has no number until its first version is approved.
        return sorted(m.number for m in endpoint.majors.all() if m.number is not None)


class MajorSerializer(serializers.ModelSerializer):
    client = serializers.CharField(source="endpoint.client.name")
    endpoint = serializers.CharField(source="endpoint.name")
    deprecatedAt = serializers.DateTimeField(source="deprecated_at", allow_null=True)
    sunsetAt = serializers.DateTimeField(source="sunset_at", allow_null=True)
    lifecycle = serializers.SerializerMethodField()
    latestApproved = serializers.SerializerMethodField()

    class Meta:
        model = MajorVersion
        fields = [
            "id",
            "client",
            "endpoint",
            "number",
            "lifecycle",
            "deprecatedAt",
            "sunsetAt",
            "latestApproved",
        ]

    def get_lifecycle(self, major: MajorVersion) -> str:
        from django.utils import timezone

        if major.sunset_at is not None and major.sunset_at <= timezone.now():
            return "sunset"
        return "deprecated" if major.deprecated_at is not None else "live"

    @extend_schema_field({"type": "string", "nullable": True, "example": "1.2"})
    def get_latestApproved(self, major: MajorVersion) -> str | None:
        minors = [v.minor for v in major.versions.all() if v.status == Status.APPROVED]
        return f"{major.number}.{max(minors)}" if minors else None


class RuleSerializer(serializers.Serializer):
    section = serializers.CharField()
    source = serializers.CharField(source="source_path")
    output = serializers.CharField(source="output_name")
    jsonType = serializers.CharField(source="json_type")


class ChangeSerializer(serializers.Serializer):
    kind = serializers.CharField()
    path = serializers.CharField()
    compatibility = serializers.ChoiceField(choices=["additive", "breaking"])
    detail = serializers.CharField()
    fingerprint = serializers.CharField()


class VersionSerializer(serializers.ModelSerializer):
    client = serializers.CharField(source="major.endpoint.client.name")
    endpoint = serializers.CharField(source="major.endpoint.name")
    # None while the version opens a new major: its number is taken on approval.
    major = serializers.IntegerField(source="major.number", allow_null=True)
    version = serializers.CharField(source="schema_version", allow_null=True)
    author = serializers.CharField(source="author.get_username")
    approver = serializers.SerializerMethodField()
    changeSummary = serializers.CharField(source="change_summary")
    reviewComment = serializers.CharField(source="review_comment")
    createdAt = serializers.DateTimeField(source="created_at")
    submittedAt = serializers.DateTimeField(source="submitted_at", allow_null=True)
    reviewedAt = serializers.DateTimeField(source="reviewed_at", allow_null=True)

    class Meta:
        model = ContractVersion
        fields = [
            "id",
            "client",
            "endpoint",
            "major",
            "minor",
            "version",
            "label",
            "status",
            "author",
            "approver",
            "changeSummary",
            "reviewComment",
            "fingerprint",
            "createdAt",
            "submittedAt",
            "reviewedAt",
        ]

    @extend_schema_field({"type": "string", "nullable": True})
    def get_approver(self, version: ContractVersion) -> str | None:
        return version.approver.get_username() if version.approver_id else None


class DiffSerializer(serializers.Serializer):
    against = serializers.CharField(allow_null=True, help_text="The predecessor's label.")
    compatibility = serializers.ChoiceField(choices=["additive", "breaking"], allow_null=True)
    changes = ChangeSerializer(many=True)


class HistoryEntrySerializer(serializers.Serializer):
    at = serializers.DateTimeField(source="history_date")
    user = serializers.CharField(allow_null=True)
    change = serializers.ChoiceField(choices=["created", "changed", "deleted"])
    status = serializers.CharField()


class VersionDetailSerializer(VersionSerializer):
    rules = RuleSerializer(many=True, read_only=True)
    shape = serializers.JSONField(allow_null=True)
    diff = serializers.SerializerMethodField()
    history = serializers.SerializerMethodField()

    class Meta(VersionSerializer.Meta):
        fields = [*VersionSerializer.Meta.fields, "rules", "shape", "diff", "history"]

    @extend_schema_field(DiffSerializer(allow_null=True))
    def get_diff(self, version: ContractVersion) -> dict[str, Any] | None:
        if version.diff is None:
            return None
        changes = version.diff
        predecessor = predecessor_of(version)
        compatibility = None
        if changes:
            breaking = any(c["compatibility"] == "breaking" for c in changes)
            compatibility = "breaking" if breaking else "additive"
        return {
            "against": predecessor.label if predecessor is not None else None,
            "compatibility": compatibility,
            "changes": changes,
        }

    @extend_schema_field(HistoryEntrySerializer(many=True))
    def get_history(self, version: ContractVersion) -> list[dict[str, Any]]:
        kinds = {"+": "created", "~": "changed", "-": "deleted"}
        return [
            {
                "at": record.history_date,
                "user": record.history_user.get_username() if record.history_user else None,
                "change": kinds[record.history_type],
                "status": record.status,
            }
            for record in version.history.select_related("history_user").order_by(
                "history_date", "history_id"
            )
        ]


def predecessor_of(version: ContractVersion) -> ContractVersion | None:
    """The version this one was judged against: the one it replaces, or would replace."""
    if version.minor is None:
        return services.baseline_for(version)
    earlier = (
        ContractVersion.objects.filter(
            major=version.major,
            minor__lt=version.minor,
            status__in=(Status.APPROVED, Status.RETIRED),
        )
        .order_by("-minor")
        .first()
    )
    if earlier is not None:
        return earlier
    earlier_majors = ContractVersion.objects.filter(
        major__endpoint=version.major.endpoint,
        major__number__isnull=False,
        status__in=(Status.APPROVED, Status.RETIRED),
    )
    if version.major.number is not None:  # an unnumbered major comes after every other
        earlier_majors = earlier_majors.filter(major__number__lt=version.major.number)
    return earlier_majors.order_by("-major__number", "-minor").first()


class RemapSerializer(serializers.Serializer):
    """A whitelisted source the code no longer declares, and the field that can feed it."""

    rule = serializers.CharField(help_text="SECTION.SOURCE of the approved rule")
    source = serializers.CharField(help_text="the declared field that feeds the same output")


class FindingSerializer(serializers.Serializer):
    """One finding of the deploy gate, as ``contracts check --format json`` prints it."""

    contract = serializers.CharField()
    client = serializers.CharField()
    endpoint = serializers.CharField()
    major = serializers.IntegerField(allow_null=True)
    kind = serializers.CharField()
    message = serializers.CharField()
    closestApproved = serializers.CharField(allow_null=True)
    compatibility = serializers.ChoiceField(choices=["additive", "breaking"], allow_null=True)
    changes = ChangeSerializer(many=True)
    remaps = RemapSerializer(many=True)
    nextMajor = serializers.IntegerField(allow_null=True)
    supersededBy = serializers.IntegerField(allow_null=True)
    proposes = serializers.CharField(allow_null=True)
    propose = serializers.CharField(allow_null=True)
    hint = serializers.CharField(allow_null=True)


class CheckResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    findings = FindingSerializer(many=True)


class ProposalResultSerializer(serializers.Serializer):
    version = VersionDetailSerializer()
    dropped = serializers.ListField(child=serializers.CharField())
    changes = ChangeSerializer(many=True)
