"""The run command's supervisor: everything starts, answers, and stops on Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from tests.conftest import free_port
from tests.live import ROOT, base_env


def test_run_starts_everything_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("bff", "user", "order", "recommendation", "catalog")}
    env = base_env(
        BFF_PORT=str(ports["bff"]),
        DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        **{
            f"{name.upper()}_SERVICE_URL": f"http://127.0.0.1:{ports[name]}"
            for name in ("user", "order", "recommendation", "catalog")
        },
    )
    env.pop("REDIS_URL", None)
    process = subprocess.Popen(
        [sys.executable, "scripts/run_demo.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    bff = f"http://127.0.0.1:{ports['bff']}"
    lines: list[str] = []
    banner = threading.Event()

    def read() -> None:
        for line in process.stdout:
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                banner.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert banner.wait(90), "no banner: " + "".join(lines)
        ready = httpx.get(f"{bff}/readyz", timeout=2)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["contracts"]["serving"]["mobile/home/v1"] == "1.0"
        user = httpx.get(f"http://127.0.0.1:{ports['user']}/_control/health", timeout=2)
        assert user.status_code == 200
        assert httpx.get(f"{bff}/admin/login/", timeout=2).status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        reader.join(timeout=5)
    output = "".join(lines)
    assert process.returncode == 0, output
    assert "BFF demo is running" in output
    assert "mobile-demo-password" in output
    for port in ports.values():
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5)
        except httpx.ConnectError:
            continue
        raise AssertionError(f"port {port} still answers after Ctrl-C")
