"""The deploy gate: can this code serve every live contract under an approved version?

``evaluate()`` compares what the checked-out code produces with the registry and returns
one finding per problem; ``contracts check``, the ``check --deploy`` system check and
``/readyz`` all report these same findings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from django.utils import timezone

from contracts.codebase import code_endpoints
from contracts.differ import Change, Compatibility, classify, diff
from contracts.models import ContractVersion, Endpoint, MajorVersion, Status
from contracts.paths import RuleError
from contracts.schema import EndpointSpec, Rule
from contracts.shapes import build_shape, fingerprint

NO_REGISTRY_ENTRY = "no_registry_entry"
RULE_NOT_IN_CODE = "rule_not_in_code"
SHAPE_CHANGED = "shape_changed"


@dataclass(frozen=True)
class Finding:
    """One contract this code cannot serve, and why."""

    client: str
    endpoint: str
    major: int | None
    kind: str
    message: str
    closest: str | None = None  # the approved version compared with
    changes: tuple[Change, ...] = field(default_factory=tuple)

    @property
    def label(self) -> str:
        major = f" v{self.major}" if self.major is not None else ""
        return f"{self.client}/{self.endpoint}{major}"

    @property
    def propose_command(self) -> str:
        major = f" --major {self.major}" if self.major is not None else ""
        bump = ""
        if self.changes and classify(self.changes) == "breaking" and self.major is not None:
            bump = f" --major {self.major + 1}"
            major = ""
        return f"python manage.py contracts propose {self.client} {self.endpoint}{major}{bump}"

    def as_dict(self) -> dict:
        return {
            "contract": self.label,
            "client": self.client,
            "endpoint": self.endpoint,
            "major": self.major,
            "kind": self.kind,
            "message": self.message,
            "closestApproved": self.closest,
            "compatibility": str(classify(self.changes)) if self.changes else None,
            "changes": [
                {
                    "kind": c.kind,
                    "path": c.path,
                    "compatibility": str(c.compatibility),
                    "detail": c.detail,
                    "fingerprint": c.fingerprint,
                }
                for c in self.changes
            ],
            "propose": self.propose_command,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> Finding:
        """The finding ``as_dict`` wrote (a remote registry's answer), read back."""
        changes = tuple(
            Change(c["kind"], c["path"], Compatibility(c["compatibility"]), c["detail"],
                   c["fingerprint"])
            for c in data["changes"]
        )  # fmt: skip
        return cls(data["client"], data["endpoint"], data["major"], kind=data["kind"],
                   message=data["message"], closest=data["closestApproved"],
                   changes=changes)  # fmt: skip


def rules_of(version: ContractVersion) -> list[Rule]:
    return [
        Rule(rule.section, rule.source_path, rule.output_name)
        for rule in sorted(version.rules.all(), key=lambda r: (r.section, r.position, r.pk))
    ]


def live_majors(endpoint: Endpoint) -> list[MajorVersion]:
    """Majors still promised to clients: not past their sunset, with an approved version."""
    now = timezone.now()
    return [
        major
        for major in endpoint.majors.all()
        if (major.sunset_at is None or major.sunset_at > now)
        and any(v.status == Status.APPROVED for v in major.versions.all())
    ]


def _judge_major(spec: EndpointSpec, major: MajorVersion) -> Finding | None:
    approved = sorted(
        (v for v in major.versions.all() if v.status == Status.APPROVED),
        key=lambda v: v.minor,
        reverse=True,
    )
    key = (spec.client, spec.name, major.number)
    rule_errors: list[str] = []
    closest: tuple[ContractVersion, list[Change]] | None = None
    for version in approved:
        try:
            produced = build_shape(spec, rules_of(version))
        except RuleError as exc:
            rule_errors.append(f"v{version.schema_version}: {exc}")
            continue
        if fingerprint(produced) == version.fingerprint:
            return None
        changes = diff(version.shape, produced)
        if closest is None or len(changes) < len(closest[1]):
            closest = (version, changes)
    if closest is not None:
        version, changes = closest
        return Finding(*key, kind=SHAPE_CHANGED, closest=version.schema_version,
                       changes=tuple(changes),
                       message=f"this code changes the response shape of v{version.schema_version} "
                       f"({classify(changes)}), and no approved version matches it")  # fmt: skip
    return Finding(*key, kind=RULE_NOT_IN_CODE,
                   closest=approved[0].schema_version if approved else None,
                   message="a rule names a field this code's source schema no longer provides: "
                   + "; ".join(rule_errors))  # fmt: skip


def evaluate() -> list[Finding]:
    """Every live contract this code cannot serve. Queries the database."""
    findings: list[Finding] = []
    endpoints = {
        (e.client.name, e.name): e
        for e in Endpoint.objects.select_related("client").prefetch_related(
            "majors__versions__rules"
        )
    }
    for (client, name), spec in sorted(code_endpoints().items()):
        endpoint = endpoints.get((client, name))
        majors = live_majors(endpoint) if endpoint is not None else []
        if not majors:
            findings.append(Finding(client, name, None, kind=NO_REGISTRY_ENTRY,
                                    message="this code serves an endpoint with no approved "
                                    "contract in the registry"))  # fmt: skip
            continue
        for major in majors:
            finding = _judge_major(spec, major)
            if finding is not None:
                findings.append(finding)
    return findings
