"""A draft's preview: its shape, and what it makes of the code's sample records, in bytes."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from contract_core.paths import RuleError
from contract_core.projection import compile_plan
from contract_core.schema import EndpointSpec, Rule
from contract_core.shapes import build_shape

# A list section is previewed with this many copies of its sample record, roughly what
# the mobile home page shows.
LIST_PREVIEW_ITEMS = 3


def preview(spec: EndpointSpec, rules: Sequence[Rule]) -> dict:
    """Shape, projected sample payload and sizes; ``error`` set instead when a rule is bad."""
    try:
        shape = build_shape(spec, rules)
        plan = compile_plan(spec, rules)
    except RuleError as exc:
        return {"error": str(exc)}
    raw: dict[str, object] = {}
    for section in spec.sections:
        record = dict(section.sample)
        raw[section.name] = [record] * LIST_PREVIEW_ITEMS if section.kind == "list" else record
    payload, drift = plan.project_all(raw)
    raw_bytes = len(orjson.dumps(raw))
    payload_bytes = len(orjson.dumps(payload))
    return {
        "shape": shape,
        "payload": payload,
        "payloadBytes": payload_bytes,
        "rawBytes": raw_bytes,
        "ratio": round(payload_bytes / raw_bytes, 3) if raw_bytes else None,
        "drift": [f"{d.section}.{d.path}: {d.reason}" for d in drift],
    }
