"""``contracts check | propose | export``: the deploy gate, the bump proposal, JSON Schema
(or, with ``export --usage``, each version's traffic)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from contracts import services
from contracts.gate import Finding, evaluate
from contracts.models import ContractVersion, Status
from contracts.shapes import to_json_schema


class Command(BaseCommand):
    help = "The contract registry from the command line: check, propose, export."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="{check,propose,export}")
        check = sub.add_parser("check", help="exit 1 unless this code can serve every contract")
        check.add_argument("--format", choices=["text", "json"], default="text")
        propose = sub.add_parser("propose", help="record this code's shape for review")
        propose.add_argument("client")
        propose.add_argument("endpoint")
        propose.add_argument("--major", type=int, default=None)
        export = sub.add_parser("export", help="write approved versions as JSON Schema")
        export.add_argument(
            "--out", type=Path, default=None, help="write one file per version into this directory"
        )
        export.add_argument("--include-retired", action="store_true")
        export.add_argument(
            "--usage",
            action="store_true",
            help="write each version's requests (last 24 h, 7 d, last seen) instead",
        )

    def handle(self, *args, action: str, **options) -> None:
        if action == "check":
            self.check_contracts(options["format"])
        elif action == "propose":
            self.propose(options["client"], options["endpoint"], options["major"])
        elif options["usage"]:
            self.export_usage()
        else:
            self.export(options["out"], include_retired=options["include_retired"])

    # -- check

    def check_contracts(self, output_format: str) -> None:
        findings = evaluate()
        if output_format == "json":
            self.stdout.write(json.dumps({"ok": not findings,
                                          "findings": [f.as_dict() for f in findings]},
                                         indent=2))  # fmt: skip
        elif not findings:
            self.stdout.write("contracts check: every contract this code serves is approved.")
        else:
            for finding in findings:
                self._print_finding(finding)
            self.stdout.write(f"contracts check: {len(findings)} contract(s) cannot be served; "
                              "the deploy is blocked.")  # fmt: skip
        if findings:
            sys.exit(1)

    def _print_finding(self, finding: Finding) -> None:
        self.stdout.write(f"✗ {finding.label}: {finding.message}")
        if finding.closest:
            self.stdout.write(f"  compared with the approved v{finding.closest}:")
        for change in finding.changes:
            self.stdout.write(f"    {change.compatibility:<9} {change.path}: {change.detail} "
                              f"[{change.kind}]")  # fmt: skip
        self.stdout.write(f"  to propose the bump: {finding.propose_command}")

    # -- propose

    def propose(self, client: str, endpoint: str, major: int | None) -> None:
        action = services.ProposeFromCode(services.proposal_author(), client, endpoint,
                                          major=major)  # fmt: skip
        try:
            version = action.execute()
        except services.ActionError as exc:
            raise CommandError(str(exc)) from None
        for dropped in action.dropped:
            self.stdout.write(f"dropped rule {dropped}")
        for change in action.changes:
            self.stdout.write(f"  {change.compatibility:<9} {change.path}: {change.detail}")
        if version.status == Status.SUBMITTED:
            self.stdout.write(
                f"proposed {client}/{endpoint} {version.major.label} as version #{version.pk}; "
                f"a release manager approves it at "
                f"/admin/contracts/contractversion/{version.pk}/review/"
            )
        else:
            self.stdout.write(
                f"created a draft of {client}/{endpoint} {version.major.label} (#{version.pk}) "
                "with no fields yet: pick them in the admin, then submit it for review"
            )

    # -- export

    def export_usage(self) -> None:
        document: dict[str, dict[str, dict[str, dict]]] = {}
        for (client, endpoint), by_version in services.usage_by_endpoint().items():
            document.setdefault(client, {})[endpoint] = {
                f"{major}.{minor}": {
                    "last24h": usage.last_24h,
                    "last7d": usage.last_7d,
                    "lastSeen": usage.last_seen.isoformat() if usage.last_seen else None,
                }
                for (major, minor), usage in by_version.items()
            }
        self.stdout.write(json.dumps(document, indent=2, sort_keys=True))

    def export(self, out: Path | None, *, include_retired: bool) -> None:
        statuses = [Status.APPROVED, Status.RETIRED] if include_retired else [Status.APPROVED]
        versions = (
            ContractVersion.objects.filter(status__in=statuses)
            .select_related("major__endpoint__client")
            .order_by("major__endpoint__client__name", "major__endpoint__name",
                      "major__number", "minor")
        )  # fmt: skip
        document: dict[str, dict[str, dict[str, dict]]] = {}
        for version in versions:
            endpoint = version.major.endpoint
            schema = to_json_schema(
                version.shape,
                title=f"{endpoint.client.name} {endpoint.name} v{version.schema_version}",
                version=version.schema_version,
            )
            document.setdefault(endpoint.client.name, {}).setdefault(endpoint.name, {})[
                version.schema_version
            ] = schema
        if out is None:
            self.stdout.write(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False))
            return
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CommandError(f"cannot write to {out}: {exc.strerror}") from None
        count = 0
        for client, endpoints in document.items():
            for endpoint, by_version in endpoints.items():
                for version, schema in by_version.items():
                    path = out / f"{client}.{endpoint}.v{version}.schema.json"
                    text = json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False)
                    path.write_text(text + "\n")
                    count += 1
        self.stdout.write(f"wrote {count} schema file(s) to {out}")
