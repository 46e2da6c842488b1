"""HTML fragments the registry's pages share: diffs, version links, traffic tables."""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join

from contracts import services
from contracts.models import (
    ContractVersion,
    MajorVersion,
    Status,
)
from contracts.usage import Usage


def when(value) -> str:
    """Every date the registry shows, in the one admin format (bff_project/formats)."""
    return date_format(timezone.localtime(value), "DATETIME_FORMAT") if value else "-"


def usage_cells(usage: Usage | None) -> tuple[str, str, str]:
    if usage is None:
        return ("-", "-", "-")
    return (str(usage.last_24h), str(usage.last_7d), when(usage.last_seen))


def changes_table(changes: list[dict] | None) -> str:
    if not changes:
        return format_html("<p>{}</p>", "No changes against the version it replaces.")
    rows = format_html_join(
        "",
        '<tr class="change-{} kind-{}"><td><strong>{}</strong></td><td><code>{}</code></td>'
        '<td>{}</td><td>{}</td><td><code title="{}">{}</code></td></tr>',
        (
            (
                c["compatibility"],
                c["kind"],
                c["compatibility"],
                c["path"],
                c["kind"],
                c["detail"],
                c["fingerprint"],
                c["fingerprint"][:12],
            )
            for c in changes
        ),
    )
    return format_html(
        '<table class="contract-diff"><thead><tr><th>compatibility</th><th>path</th>'
        "<th>change</th><th>detail</th><th>change id</th></tr></thead><tbody>{}</tbody></table>",
        rows,
    )


def version_link(version: ContractVersion | None) -> str:
    if version is None:
        return "-"
    return format_html(
        '<a href="{}">{}</a>',
        reverse("admin:contracts_contractversion_change", args=[version.pk]),
        version.label,
    )


def is_live(version: ContractVersion) -> bool:
    """Whether this is the version its major serves (the newest approved one)."""
    if version.status != Status.APPROVED:
        return False
    latest = services.latest_approved(version.major)
    return latest is not None and latest.pk == version.pk


def usage_table(major: MajorVersion, *, highlight: int | None = None) -> str:
    """Traffic of a major and each of its minors: last 24 h, 7 d, last seen."""
    if major.number is None:
        return format_html("<p>{}</p>", "No traffic: this major has no approved version yet.")
    total, per_minor = services.major_usage(major)
    rows = [
        (
            "usage-total",
            f"{major.label} (all minors)",
            *usage_cells(total),
        )
    ]
    for minor, usage in sorted(per_minor.items()):
        css = "usage-minor usage-highlight" if minor == highlight else "usage-minor"
        rows.append((css, f"{major.number}.{minor}", *usage_cells(usage)))
    body = format_html_join(
        "",
        '<tr class="{}"><td>{}</td><td class="usage-24h">{}</td><td class="usage-7d">{}</td>'
        '<td class="usage-seen">{}</td></tr>',
        rows,
    )
    return format_html(
        '<table class="usage"><thead><tr><th>version</th><th>last 24 h</th><th>last 7 d</th>'
        "<th>last seen</th></tr></thead><tbody>{}</tbody></table>",
        body,
    )


def in_use_warning(usage: Usage, what: str) -> str:
    if not usage.in_use:
        return ""
    return (
        f"{what} is still in use: {usage.last_7d} requests in the last 7 days, "
        f"the last at {when(usage.last_seen)}."
    )
