"""``contracts export``: the approved contracts as JSON Schema, for client teams' CI."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from contracts.models import ContractVersion, Status
from contracts.shapes import to_json_schema


class Command(BaseCommand):
    help = "Registry commands: export."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="{export}")
        export = sub.add_parser("export", help="write approved versions as JSON Schema")
        export.add_argument(
            "--out", type=Path, default=None, help="write one file per version into this directory"
        )
        export.add_argument("--include-retired", action="store_true")

    def handle(self, *args, action: str, **options) -> None:
        if action == "export":
            self.export(options["out"], include_retired=options["include_retired"])

    def export(self, out: Path | None, *, include_retired: bool) -> None:
        statuses = [Status.APPROVED, Status.RETIRED] if include_retired else [Status.APPROVED]
        versions = (
            ContractVersion.objects.filter(status__in=statuses)
            .select_related("major__endpoint__client")
            .order_by(
                "major__endpoint__client__name", "major__endpoint__name", "major__number", "minor"
            )
        )
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
                    path.write_text(
                        json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
                    )
                    count += 1
        self.stdout.write(f"wrote {count} schema file(s) to {out}")
