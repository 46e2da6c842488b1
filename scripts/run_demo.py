"""Runs the whole demo: migrations, seed data, the demo internal services and the BFF.

``make run`` calls this inside the project's virtual environment. Ctrl-C (or SIGTERM)
stops every process it started; if any of them dies, the others are stopped too.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: make the project's packages importable

from bff_project.server import uvicorn_command  # noqa: E402

PYTHON = sys.executable
STARTUP_TIMEOUT_SECONDS = 60


def log(message: str) -> None:
    print(f"[run] {message}", flush=True)


def manage(*args: str, env: dict[str, str], capture: bool = False) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=False,
        text=True,
        stdout=subprocess.PIPE if capture else None,
    )
    if result.returncode != 0:
        sys.exit(f"[run] 'manage.py {' '.join(args)}' failed (exit {result.returncode})")
    return (result.stdout or "").strip()


def wait_until_ok(url: str, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} during start-up")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer {url} within {STARTUP_TIMEOUT_SECONDS}s")


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + 10
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def banner(bff: str, env: dict[str, str], seed_output: str) -> str:
    mobile = manage("mint_token", "--client", "mobile", "--sub", "usr_9821", env=env, capture=True)
    web = manage("mint_token", "--client", "web", "--sub", "usr_9821", env=env, capture=True)
    partner = manage(
        "mint_token",
        "--client",
        "partner",
        "--sub",
        "ptn_acme",
        "--scope",
        "catalog:read",
        env=env,
        capture=True,
    )
    recommendation = env.get("RECOMMENDATION_SERVICE_URL", "http://127.0.0.1:9103")
    return f"""
================================================================================
 BFF demo is running at {bff}
 Admin:   {bff}/admin/
{seed_output}

 Try it (tokens for usr_9821 and partner ptn_acme; they expire in an hour):
   TOKEN={mobile}
   WEB_TOKEN={web}
   PARTNER_TOKEN={partner}
   curl -s -H "Authorization: Bearer $TOKEN" {bff}/mobile/v1/home
   curl -s -H "Authorization: Bearer $WEB_TOKEN" {bff}/web/v1/dashboard
   curl -s -i -H "Authorization: Bearer $PARTNER_TOKEN" {bff}/partner/v1/products/prd_1001
   curl -s -H "Authorization: Bearer $PARTNER_TOKEN" "{bff}/partner/v2/products?ids=prd_1,prd_2"
   # degrade it: make the recommendation service fail, call again, then clear the fault
   curl -s -X PUT -d '{{"status": 503}}' {recommendation}/_control/faults
   curl -s -i -H "Authorization: Bearer $TOKEN" {bff}/mobile/v1/home
   curl -s -X DELETE {recommendation}/_control/faults
   curl -s {bff}/readyz
   curl -s {bff}/metrics | grep ^bff_

 Mint another token: .venv/bin/python manage.py mint_token --client mobile --sub usr_9821
 Ctrl-C stops everything.
================================================================================
"""


def main() -> int:
    env = dict(os.environ)
    # The demo runs with the embedded demo secrets; production sets DJANGO_DEBUG=0.
    env.setdefault("DJANGO_DEBUG", "1")
    host = env.get("BFF_HOST", "127.0.0.1")
    port = env.get("BFF_PORT", "8000")
    workers = env.get("BFF_WORKERS", "2")
    metrics_dir = ROOT / ".run" / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)

    log("checking configuration and migrating the database")
    manage("check", env=env)
    manage("migrate", "--noinput", "-v", "0", env=env)
    seed_output = manage("seed_demo", env=env, capture=True)

    processes: list[subprocess.Popen] = []

    def on_signal(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        log("starting the demo internal services")
        services = subprocess.Popen([PYTHON, "-m", "demo_services"], cwd=ROOT, env=env)
        processes.append(services)
        for name in ("USER", "ORDER", "RECOMMENDATION", "CATALOG"):
            default_port = {"USER": 9101, "ORDER": 9102, "RECOMMENDATION": 9103, "CATALOG": 9104}
            base = env.get(f"{name}_SERVICE_URL", f"http://127.0.0.1:{default_port[name]}")
            wait_until_ok(f"{base}/_control/health", services, "the demo services")

        log(f"starting the BFF (uvicorn, {workers} workers) on {host}:{port}")
        server = subprocess.Popen(
            uvicorn_command(host=host, port=port, workers=workers),
            cwd=ROOT,
            env=env,
        )
        processes.append(server)
        bff = f"http://{host}:{port}"
        wait_until_ok(f"{bff}/readyz", server, "the BFF")
        print(banner(bff, env, seed_output), flush=True)

        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
        dead = next(process for process in processes if process.poll() is not None)
        log(f"process {dead.args[2]!r} exited with code {dead.returncode}; stopping the rest")
        return 1
    except KeyboardInterrupt:
        log("stopping")
        return 0
    except RuntimeError as exc:
        log(f"start-up failed: {exc}")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop(processes)


if __name__ == "__main__":
    sys.exit(main())
