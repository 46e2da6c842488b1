"""``contracts check | propose | export``: the deploy gate, the bump proposal, JSON Schema
(or, with ``export --usage``, each version's traffic).

With ``--registry URL`` each runs against a remote registry's API instead of the database,
with the token in ``CONTRACTS_REGISTRY_TOKEN``: same output, same exit codes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from contracts import exports, services
from contracts.codebase import code_endpoint, code_endpoints
from contracts.gate import Finding, evaluate
from contracts.models import Status
from contracts.remote import RegistryClient, RemoteError

REGISTRY_HELP = (
    "a registry's URL: run against its API with the token in CONTRACTS_REGISTRY_TOKEN, "
    "needing no database"
)


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
        propose.add_argument(
            "--remap",
            action="append",
            default=[],
            metavar="SECTION.SOURCE=NEW_SOURCE",
            help="feed the output of a rule from another declared source field, e.g. "
            "user.avatarUrl=profileImageUrl (repeatable)",
        )
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
        for command in (check, propose, export):
            command.add_argument("--registry", default=None, metavar="URL", help=REGISTRY_HELP)

    def handle(self, *args, action: str, **options) -> None:
        remote = None
        if options["registry"]:
            token = settings.REGISTRY_API.get("CLIENT_TOKEN", "")
            try:
                remote = RegistryClient(options["registry"], token)
            except RemoteError as exc:
                raise CommandError(str(exc)) from None
        elif getattr(settings, "REGISTRY_CLIENT", False):
            raise CommandError("BFF_REGISTRY_CLIENT is set: pass --registry URL")
        if action == "export" and options["usage"] and remote is not None:
            raise CommandError("export --usage reads this registry's own traffic: no --registry")
        try:
            if action == "check":
                self.check_contracts(options["format"], remote)
            elif action == "propose":
                self.propose(
                    options["client"],
                    options["endpoint"],
                    options["major"],
                    options["remap"],
                    remote,
                )
            elif options["usage"]:
                self.export_usage()
            else:
                self.export(
                    options["out"], include_retired=options["include_retired"], remote=remote
                )
        except RemoteError as exc:
            raise CommandError(str(exc)) from None

    # -- check

    def check_contracts(self, output_format: str, remote: RegistryClient | None = None) -> None:
        if remote is not None:
            result = remote.check(code_endpoints().values())
            findings = [Finding.from_dict(item) for item in result["findings"]]
        else:
            findings = evaluate()
            result = {"ok": not findings, "findings": [f.as_dict() for f in findings]}
        if output_format == "json":
            self.stdout.write(json.dumps(result, indent=2))
        elif not findings:
            self.stdout.write("contracts check: every contract this code serves is approved.")
        else:
            for finding in findings:
                self._print_finding(finding)
            self.stdout.write(
                f"contracts check: {len(findings)} contract(s) cannot be served; "
                "the deploy is blocked."
            )
        if findings:
            sys.exit(1)

    def _print_finding(self, finding: Finding) -> None:
        self.stdout.write(f"✗ {finding.label}: {finding.message}")
        if finding.closest:
            self.stdout.write(f"  compared with the approved v{finding.closest}:")
        for change in finding.changes:
            self.stdout.write(
                f"    {change.compatibility:<9} {change.path}: {change.detail} [{change.kind}]"
            )
        for old, new in finding.remaps:
            self.stdout.write(f"  the code now declares {new!r}, which can feed {old}'s output")
        if finding.propose_command:
            self.stdout.write(f"  to propose {finding.proposes}: {finding.propose_command}")
        else:
            self.stdout.write(f"  to unblock: {finding.hint}")

    # -- propose

    def propose(
        self,
        client: str,
        endpoint: str,
        major: int | None,
        remaps: list[str],
        remote: RegistryClient | None = None,
    ) -> None:
        try:
            parsed = services.parse_remaps(remaps)
        except services.ActionError as exc:
            raise CommandError(str(exc)) from None
        if remote is not None:
            spec = code_endpoint(client, endpoint)
            if spec is None:
                raise CommandError(f"this code declares no endpoint {client}/{endpoint}")
            result = remote.propose(spec, major, remaps)
            version = result["version"]
            changes = [
                (c["compatibility"], c["path"], c["detail"], c["kind"]) for c in result["changes"]
            ]
            self._print_proposal(
                client,
                endpoint,
                result["dropped"],
                changes,
                label=f"v{version['major']}" if version["major"] else "new major",
                pk=version["id"],
                submitted=version["status"] == Status.SUBMITTED,
            )
            return
        action = services.ProposeFromCode(
            services.proposal_author(), client, endpoint, major=major, remaps=parsed
        )
        try:
            version = action.execute()
        except services.ActionError as exc:
            raise CommandError(str(exc)) from None
        changes = [(str(c.compatibility), c.path, c.detail, c.kind) for c in action.changes]
        self._print_proposal(
            client,
            endpoint,
            action.dropped,
            changes,
            label=version.major.label,
            pk=version.pk,
            submitted=version.status == Status.SUBMITTED,
        )

    def _print_proposal(
        self,
        client: str,
        endpoint: str,
        dropped: list[str],
        changes: list[tuple[str, str, str, str]],
        *,
        label: str,
        pk: int,
        submitted: bool,
    ) -> None:
        for line in dropped:
            self.stdout.write(f"dropped rule {line}")
        for compatibility, path, detail, kind in changes:
            self.stdout.write(f"  {compatibility:<9} {path}: {detail} [{kind}]")
        if submitted:
            self.stdout.write(
                f"proposed {client}/{endpoint} {label} as version #{pk}; "
                f"a release manager approves it at "
                f"/admin/contracts/contractversion/{pk}/review/"
            )
        else:
            self.stdout.write(
                f"created a draft of {client}/{endpoint} {label} (#{pk}) "
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

    def export(
        self, out: Path | None, *, include_retired: bool, remote: RegistryClient | None = None
    ) -> None:
        if remote is not None:
            document = remote.export(include_retired=include_retired)
        else:
            document = exports.schema_document(include_retired=include_retired)
        if out is None:
            self.stdout.write(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False))
            return
        try:
            count = exports.write_schema_files(document, out)
        except OSError as exc:
            raise CommandError(f"cannot write to {out}: {exc.strerror}") from None
        self.stdout.write(f"wrote {count} schema file(s) to {out}")
