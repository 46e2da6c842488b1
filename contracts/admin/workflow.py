"""What the workflow pages compute: notices, review facts, lifecycle proposals."""

from __future__ import annotations

import json

from django.contrib import messages

from contract_core.clients import EXTERNAL_CLIENTS
from contract_core.paths import RuleError, sensitivity
from contract_core.schema import EndpointSpec, Rule
from contracts import services
from contracts.admin.base import spec_of
from contracts.admin.panels import changes_table, usage_table, version_link
from contracts.models import (
    ContractVersion,
    Status,
)
from contracts.preview import preview


def version_notices(version: ContractVersion) -> list[str]:
    """What the page should say before anyone acts on this version."""
    notices = []
    if version.status == Status.DRAFT and version.review_comment:
        notices.append(f"Changes requested: {version.review_comment}")
    if version.status in (Status.DRAFT, Status.SUBMITTED):
        baseline = services.baseline_for(version)
        if baseline is not None and version.based_on_id not in (None, baseline.pk):
            notices.append(
                f"{baseline.label} was approved since this version was started from "
                f"{version.based_on.label}: update it from the new base."
            )
        shape = version.shape if version.status == Status.SUBMITTED else None
        notices += [f"Note: {w}." for w in services.workflow_warnings(version, shape)]
        spec = spec_of(version)
        client = version.major.endpoint.client.name
        if spec is not None and client in EXTERNAL_CLIENTS:
            internal = services.internal_fields(spec, services.rules_of(version))
            if internal:
                notices.append(
                    f"{', '.join(internal)}: internal, and {client} is an external client. "
                    "A release manager must override this with a reason at review."
                )
    return notices


def review_facts(version: ContractVersion) -> dict:
    """Everything a release manager weighs, computed now (the base may have moved)."""
    spec = spec_of(version)
    baseline = services.baseline_for(version)
    rules = services.rules_of(version)
    facts: dict = {
        "baseline": baseline,
        "baseline_link": version_link(baseline),
        "draft_link": version_link(version),
        "next_label": services.next_label(version),
        "notices": version_notices(version),
        "usage": usage_table(baseline.major) if baseline else "",
        "same_major": baseline is not None and baseline.major_id == version.major_id,
    }
    if version.shape is not None:
        changes = services.changes_between(baseline, version.shape)
        facts["diff"] = changes_table(services.serialise_changes(changes))
        if changes:
            facts["compatibility"] = str(services.classify(changes))
        else:
            facts["compatibility"] = "no change" if baseline else "first version"
    if spec is None:
        return facts
    after = preview(spec, rules)
    before = preview(spec, services.rules_of(baseline)) if baseline else None
    facts["after_payload"] = json.dumps(after.get("payload"), indent=2, ensure_ascii=False)
    facts["after_bytes"] = after.get("payloadBytes")
    if before is not None and "payloadBytes" in before and "payloadBytes" in after:
        delta = after["payloadBytes"] - before["payloadBytes"]
        facts["before_payload"] = json.dumps(before["payload"], indent=2, ensure_ascii=False)
        facts["before_bytes"] = before["payloadBytes"]
        facts["size_delta"] = f"{delta:+d} bytes"
        facts["size_percent"] = f"{100 * delta / before['payloadBytes']:+.1f} %"
    facts["rules"] = [
        {
            "field": f"{rule.section}.{rule.source}",
            "output": rule.output_path,
            "type": services.json_type_of(spec, rule),
            "sensitivity": _sensitivity_of(spec, rule),
        }
        for rule in rules
    ]
    facts["internal"] = (
        services.internal_fields(spec, rules)
        if version.major.endpoint.client.name in EXTERNAL_CLIENTS
        else []
    )
    return facts


def _sensitivity_of(spec: EndpointSpec, rule: Rule) -> str:
    section = spec.section(rule.section)
    try:
        return sensitivity(section.source, rule.source) if section else ""
    except RuleError:
        return ""


def lifecycle_context(model_admin, request, **facts) -> dict:
    """The retire and deprecate pages' context: the facts, and who may decide."""
    pending = facts["pending"]
    user = request.user
    return {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "can_confirm": pending is not None and pending.proposer_id != user.pk,
        "is_proposer": pending is not None and pending.proposer_id == user.pk,
        **facts,
    }


def lifecycle_post(model_admin, request, pending, propose) -> bool:
    """Handle propose / confirm / decline; True when done (the page then redirects)."""
    step = request.POST.get("step")
    comment = request.POST.get("comment", "")
    try:
        if step == "propose":
            propose(request.POST.get("reason", ""))
            model_admin.message_user(
                request,
                "Proposed. Another release manager must confirm it before clients see it.",
                messages.SUCCESS,
            )
        elif step in ("confirm", "decline") and pending is not None:
            action = services.ConfirmProposal if step == "confirm" else services.DeclineProposal
            done = action(request.user, pending, comment=comment).execute()
            model_admin.message_user(request, f"Proposal {done.status}.", messages.SUCCESS)
        else:
            return False
    except services.ActionError as exc:
        model_admin.message_user(request, f"Not done: {exc}", messages.ERROR)
    return True
