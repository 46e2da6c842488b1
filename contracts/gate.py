"""The deploy gate: does this code serve every live contract at its newest approved minor?

``evaluate()`` compares what the checked-out code produces with the registry and returns
one finding per problem; ``contracts check`` and the ``check --deploy`` system check
report these same findings. The gate is strict where readiness is lenient (SPEC section
6): code that can only serve an older minor of a live major is blocked, even though an
instance already running it may keep serving that minor during a rollout.

Each finding carries the command that proposes the way out, and that command works as
printed: a remap in the same major when a whitelisted source field vanished and the code
now declares a field that can feed the same output, the next major for anything else
breaking, the same major for an additive change.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from django.utils import timezone

from contract_core.differ import BREAKING, Change, Compatibility, classify, diff
from contract_core.paths import RuleError
from contract_core.remaps import compatible_sources
from contract_core.schema import EndpointSpec, Rule
from contract_core.servingrule import Approved, Choice, choose
from contract_core.shapes import build_shape
from contracts.codebase import code_endpoints
from contracts.models import Endpoint, MajorVersion, Status, rules_of

NO_REGISTRY_ENTRY = "no_registry_entry"
RULE_NOT_IN_CODE = "rule_not_in_code"
SHAPE_CHANGED = "shape_changed"
ENDPOINT_NOT_IN_CODE = "endpoint_not_in_code"

# No proposal can bring back an endpoint the code dropped; what to do instead.
ENDPOINT_GONE_HINT = (
    "restore the endpoint in the code, or deprecate this major with a sunset date in the "
    "admin (it answers 410 after the sunset and no longer binds the gate)"
)


@dataclass(frozen=True)
class Finding:
    """One live contract this code does not serve at its newest approved minor, and why."""

    client: str
    endpoint: str
    major: int | None
    kind: str
    message: str
    closest: str | None = None  # the approved version compared with: the newest
    changes: tuple[Change, ...] = field(default_factory=tuple)
    # "section.oldSource" -> "newSource": the remaps that keep the major (see replacements())
    remaps: tuple[tuple[str, str], ...] = ()
    next_major: int | None = None
    # A higher major this code already serves at its newest minor: another major would not
    # help, the old one must stay servable until its sunset.
    superseded_by: int | None = None

    @property
    def label(self) -> str:
        major = f" v{self.major}" if self.major is not None else ""
        return f"{self.client}/{self.endpoint}{major}"

    @property
    def breaking(self) -> bool:
        return classify(self.changes) == BREAKING and not self.remaps

    @property
    def propose_command(self) -> str | None:
        if self.kind == ENDPOINT_NOT_IN_CODE or self.superseded_by is not None:
            return None
        command = f"python manage.py contracts propose {self.client} {self.endpoint}"
        if self.major is None:
            return command
        if self.breaking:
            return f"{command} --major {self.next_major or self.major + 1}"
        remaps = "".join(f" --remap {old}={new}" for old, new in self.remaps)
        return f"{command} --major {self.major}{remaps}"

    @property
    def proposes(self) -> str | None:
        """What the propose command asks for, in words."""
        if self.kind == ENDPOINT_NOT_IN_CODE or self.superseded_by is not None:
            return None
        if self.major is None:
            return "a first contract"
        if self.breaking:
            return f"a new major, v{self.next_major or self.major + 1}"
        if self.remaps:
            return f"a remap in v{self.major}"
        return f"the next minor of v{self.major}"

    @property
    def hint(self) -> str:
        """What to do, when no proposal can resolve the finding."""
        if self.kind == ENDPOINT_NOT_IN_CODE:
            return ENDPOINT_GONE_HINT
        if self.superseded_by is not None:
            return (
                f"v{self.superseded_by} already matches this code, so another major would not "
                f"help: keep v{self.major} servable (keep declaring what it reads) until it is "
                "deprecated and past its sunset date"
            )
        return ""

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
            "remaps": [{"rule": old, "source": new} for old, new in self.remaps],
            "nextMajor": self.next_major,
            "supersededBy": self.superseded_by,
            "proposes": self.proposes,
            "propose": self.propose_command,
            "hint": self.hint or None,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> Finding:
        """The finding ``as_dict`` wrote (a remote registry's answer), read back."""
        changes = tuple(
            Change(
                c["kind"],
                c["path"],
                Compatibility(c["compatibility"]),
                c["detail"],
                c["fingerprint"],
            )
            for c in data["changes"]
        )
        return cls(
            data["client"],
            data["endpoint"],
            data["major"],
            kind=data["kind"],
            message=data["message"],
            closest=data["closestApproved"],
            changes=changes,
            remaps=tuple((r["rule"], r["source"]) for r in data.get("remaps", ())),
            next_major=data.get("nextMajor"),
            superseded_by=data.get("supersededBy"),
        )


def live_majors(endpoint: Endpoint) -> list[MajorVersion]:
    """Majors still promised to clients: not past their sunset, with an approved version."""
    now = timezone.now()
    return [
        major
        for major in endpoint.majors.all()
        if (major.sunset_at is None or major.sunset_at > now)
        and any(v.status == Status.APPROVED for v in major.versions.all())
    ]


def approved_versions(major: MajorVersion) -> list[Approved]:
    return [
        Approved(v.minor, v.fingerprint, tuple(rules_of(v)), shape=v.shape, ref=v)
        for v in major.versions.all()
        if v.status == Status.APPROVED
    ]


def choice_for(spec: EndpointSpec, major: MajorVersion) -> Choice:
    """The serving rule applied to one major with this code (the snapshot does the same)."""
    return choose(major.number, approved_versions(major), lambda rules: build_shape(spec, rules))


def judge(spec: EndpointSpec, choice: Choice, *, next_major: int) -> Finding | None:
    """None when this code serves the newest approved minor; else what is wrong, classified
    against that newest minor, with the proposal that resolves it."""
    if choice.current or choice.newest is None:
        return None
    key = (spec.client, spec.name, choice.major)
    newest = choice.attempts[0]
    label = f"v{choice.major}.{newest.version.minor}"
    served = choice.serving
    also = (
        f"; it would only serve the older v{choice.major}.{served.minor}"
        if served is not None
        else ""
    )
    if newest.shape is not None:
        changes = diff(newest.version.shape, newest.shape)
        return Finding(
            *key,
            kind=SHAPE_CHANGED,
            closest=label[1:],
            changes=tuple(changes),
            next_major=next_major,
            message=f"this code changes the response shape of {label} ({classify(changes)}){also}",
        )
    kept, dropped = split_rules(spec, newest.version.rules)
    changes = diff(newest.version.shape, build_shape(spec, kept))
    remaps = replacements(spec, kept, dropped, newest.version.shape)
    gone = f"a rule of {label} names a field this code's source schema no longer provides"
    return Finding(
        *key,
        kind=RULE_NOT_IN_CODE,
        closest=label[1:],
        changes=tuple(changes),
        remaps=remaps,
        next_major=next_major,
        message=f"{gone}: {newest.error}{also}",
    )


def split_rules(spec: EndpointSpec, rules: Sequence[Rule]) -> tuple[list[Rule], list[Rule]]:
    """The rules this code can still apply, and those naming a field or section it dropped."""
    kept: list[Rule] = []
    dropped: list[Rule] = []
    for rule in rules:
        try:
            build_shape(spec, [*kept, rule])
        except RuleError:
            dropped.append(rule)
        else:
            kept.append(rule)
    return kept, dropped


def replacements(
    spec: EndpointSpec, kept: Sequence[Rule], dropped: Sequence[Rule], approved_shape: dict
) -> tuple[tuple[str, str], ...]:
    """A remap for every dropped rule, or none at all.

    A field can feed a vanished one when ``contracts.remaps`` finds it compatible (same
    parent, unused, nothing breaking at the output) and its name shares a word with the
    vanished name (``avatarUrl`` and ``profileImageUrl`` share "url") or is spelled much
    like it. The code does not say which of its fields are new, so the name is what tells
    a renamed field from an unrelated one of the same type; when two candidates are
    equally good, none is proposed and the gate asks for the next major.
    """
    remaps: list[tuple[str, str]] = []
    rules = list(kept)
    for rule in dropped:
        name = rule.source.rpartition(".")[2]
        scored = sorted(
            (
                (score, path)
                for path in compatible_sources(spec, rules, rule, approved_shape)
                if (score := _likeness(name, path.rpartition(".")[2])) is not None
            ),
            reverse=True,
        )
        if not scored or (len(scored) > 1 and scored[0][0] == scored[1][0]):
            return ()
        path = scored[0][1]
        rules.append(Rule(rule.section, path, rule.output_path))
        remaps.append((f"{rule.section}.{rule.source}", path))
    return tuple(remaps)


_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def _words(name: str) -> set[str]:
    return {word.lower() for word in _WORD.findall(name)}


def _likeness(old: str, new: str) -> tuple[int, float] | None:
    shared = len(_words(old) & _words(new))
    ratio = difflib.SequenceMatcher(None, old.lower(), new.lower()).ratio()
    if not shared and ratio < 0.75:
        return None
    return (shared, round(ratio, 6))


def evaluate() -> list[Finding]:
    """Every live contract this code does not serve at its newest approved minor.

    Queries the database.
    """
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
            message = "this code serves an endpoint with no approved contract in the registry"
            findings.append(Finding(client, name, None, kind=NO_REGISTRY_ENTRY, message=message))
            continue
        next_major = max(m.number for m in endpoint.majors.all()) + 1
        choices = [choice_for(spec, major) for major in majors]
        current = [choice.major for choice in choices if choice.current]
        for choice in choices:
            finding = judge(spec, choice, next_major=next_major)
            if finding is None:
                continue
            higher = [number for number in current if number > choice.major]
            if finding.breaking and higher:
                finding = replace(finding, superseded_by=max(higher))
            findings.append(finding)
    declared = code_endpoints()
    for (client, name), endpoint in sorted(endpoints.items()):
        if (client, name) in declared:
            continue
        for major in live_majors(endpoint):
            message = "this code no longer declares the endpoint of a live contract"
            finding = Finding(
                client, name, major.number, kind=ENDPOINT_NOT_IN_CODE, message=message
            )
            findings.append(finding)
    return findings
