"""The registry's part of ``/readyz``: a snapshot is loaded and every contract is served."""

from __future__ import annotations

from asgiref.sync import sync_to_async

from bff_project.ops import ProbeResult
from contracts.codebase import code_endpoints
from contracts.serving import registry


async def registry_probe() -> ProbeResult:
    if not registry.loaded:
        # Start-up found the database down; try again rather than wait for the poller.
        await sync_to_async(registry.refresh)()
    snapshot = registry.snapshot
    if not registry.loaded:
        return ProbeResult(ok=False, detail={"error": registry.last_error or "not loaded yet"})
    unserved = {
        f"{client}/{endpoint}/v{major}": state.reason
        for (client, endpoint, major), state in snapshot.majors.items()
        if state.serving is None and state.approved
    }
    known = {(client, endpoint) for client, endpoint, _ in snapshot.majors}
    for client, endpoint in code_endpoints():
        if (client, endpoint) not in known:
            unserved[f"{client}/{endpoint}"] = "no contract in the registry"
    serving = {
        f"{client}/{endpoint}/v{major}": state.serving.schema_version
        for (client, endpoint, major), state in snapshot.majors.items()
        if state.serving is not None
    }
    detail = {"generation": snapshot.generation, "serving": serving}
    if registry.last_error:
        detail["lastError"] = registry.last_error
    if unserved:
        detail["unserveable"] = unserved
    return ProbeResult(ok=not unserved, detail=detail)
