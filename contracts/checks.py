"""System checks of the deploy gate, for ``python manage.py check --deploy``."""

from __future__ import annotations

from django.core.checks import Error, register
from django.db import DatabaseError

E001 = "contracts.E001"  # the code changes a served response shape without an approved bump
E002 = "contracts.E002"  # the code serves an endpoint the registry has no contract for
E003 = "contracts.E003"  # a rule names a field the code's source schema no longer provides
E004 = "contracts.E004"  # the registry could not be read
E005 = "contracts.E005"  # a live contract's endpoint is gone from the code

_IDS = {
    "shape_changed": E001,
    "no_registry_entry": E002,
    "rule_not_in_code": E003,
    "endpoint_not_in_code": E005,
}


@register("contracts", deploy=True)
def check_contracts_servable(app_configs=None, databases=None, **kwargs) -> list[Error]:
    """Every live contract must be servable by this code under an approved version."""
    from contracts.gate import evaluate

    try:
        findings = evaluate()
    except DatabaseError as exc:
        return [
            Error(
                f"the contract registry could not be read ({type(exc).__name__}: {exc})",
                hint="Run 'python manage.py migrate' and check DATABASE_URL.",
                id=E004,
            )
        ]
    return [
        Error(
            f"{finding.label}: {finding.message}",
            hint=(
                f"Run '{finding.propose_command}' and have a release manager approve it."
                if finding.propose_command
                else f"To unblock: {finding.hint}."
            ),
            obj=finding.label,
            id=_IDS[finding.kind],
        )
        for finding in findings
    ]
