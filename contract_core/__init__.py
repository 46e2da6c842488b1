"""The contract core: what a contract is and does, in plain Python with no Django.

Declarations (``schema``), rule paths (``paths``), shapes and fingerprints (``shapes``),
the differ, remaps, the serving rule, the JSON form of declarations and the compiled
projection; plus the few Django-free pieces both apps and the project share: the client
names (``clients``), the request's trace context (``tracing``) and the hooks through
which the project runs what the apps register (``hooks``).

It imports neither Django nor ``contracts``, ``aggregation`` or ``bff_project``; the
import-linter contracts in ``pyproject.toml`` keep it so (``make test`` runs them).
"""
