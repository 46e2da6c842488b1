"""Remaps: which declared source fields can feed a rule's output without clients noticing.

A remap keeps a rule's output and reads another source field (a service renamed
``avatarUrl`` to ``profileImageUrl``). It is compatible when the other field sits in the
same parent object, no other rule reads it, and the output it makes is one clients of the
approved shape already read: the differ finds nothing breaking at that output.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from contract_core.differ import BREAKING, classify, diff
from contract_core.paths import RuleError, leaf_paths
from contract_core.schema import EndpointSpec, Rule
from contract_core.shapes import build_shape


def output_path(spec: EndpointSpec, rule: Rule) -> str:
    """Where the differ reports changes to ``rule``'s output: ``user.avatarUrl``."""
    section = spec.section(rule.section)
    kind = section.kind if section is not None else "object"
    return f"{rule.section}{'' if kind == 'object' else '[]'}.{rule.output_path}"


def compatible_sources(
    spec: EndpointSpec, others: Sequence[Rule], rule: Rule, approved_shape: dict[str, Any]
) -> list[str]:
    """The source paths that can feed ``rule``'s output, in declaration order.

    ``others`` are the version's other rules (valid in this code); ``rule``'s own source
    may or may not still be declared, and is never offered.
    """
    section = spec.section(rule.section)
    if section is None:
        return []
    parent = rule.source.rpartition(".")[0]
    taken = {r.source for r in others if r.section == rule.section} | {rule.source}
    where = output_path(spec, rule)
    found = []
    for path, _label in leaf_paths(section.source):
        if path.rpartition(".")[0] != parent or path in taken:
            continue
        try:
            shape = build_shape(spec, [*others, Rule(rule.section, path, rule.output_path)])
        except RuleError:
            continue
        mine = [
            c
            for c in diff(approved_shape, shape)
            if c.path == where or c.path.startswith((where + ".", where + "[]"))
        ]
        if classify(mine) != BREAKING:
            found.append(path)
    return found
