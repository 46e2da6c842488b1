"""`python -m demo_services`: start-up lines, start-up errors and clean shutdown."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from demo_services.__main__ import URL_VARIABLES
from demo_services.testing import free_ports

# Starts servers or subprocesses of its own.
pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _env(**overrides: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.endswith("_SERVICE_URL")}
    for (variable, _), port in zip(URL_VARIABLES.values(), free_ports(4), strict=True):
        env[variable] = f"http://127.0.0.1:{port}"
    env["PYTHONPATH"] = str(ROOT)
    env.update(overrides)
    return env


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "demo_services", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture
def start() -> Iterator:
    processes: list[subprocess.Popen[str]] = []

    def launch(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "demo_services", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
        return process

    yield launch
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def _assert_one_clear_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize(
    ("variable", "url"),
    [
        ("USER_SERVICE_URL", "not a url"),
        ("ORDER_SERVICE_URL", "http://127.0.0.1:notaport"),
        ("RECOMMENDATION_SERVICE_URL", "http://127.0.0.1"),
        ("CATALOG_SERVICE_URL", "ftp://127.0.0.1:9000"),
        ("USER_SERVICE_URL", "http://127.0.0.1:99999"),
        ("USER_SERVICE_URL", "http://127.0.0.1:9000/api"),
        ("USER_SERVICE_URL", "http://[::1:9000"),
        ("USER_SERVICE_URL", ""),
    ],
)
def test_a_malformed_url_exits_2_with_one_line_naming_the_variable(variable: str, url: str) -> None:
    result = _run(_env(**{variable: url}))
    _assert_one_clear_line(result, variable)
    assert result.stdout == ""


def test_a_port_in_use_exits_2_with_one_line_naming_the_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run(_env(CATALOG_SERVICE_URL=f"http://127.0.0.1:{port}"))
    _assert_one_clear_line(result, f"127.0.0.1:{port}", "CATALOG_SERVICE_URL", "in use")


def test_an_empty_token_exits_2() -> None:
    _assert_one_clear_line(_run(_env(INTERNAL_SERVICE_TOKEN="")), "INTERNAL_SERVICE_TOKEN")


def test_an_unknown_service_in_only_exits_2() -> None:
    result = _run(_env(), "--only", "user,billing")
    assert result.returncode == 2
    assert "billing" in result.stderr
    assert "Traceback" not in result.stderr


def _read_listening_lines(process: subprocess.Popen[str], count: int) -> list[str]:
    assert process.stdout is not None
    lines = [process.stdout.readline().strip() for _ in range(count)]
    assert all(lines), f"exited early: {process.stderr.read() if process.stderr else ''}"
    return lines


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_it_announces_each_service_and_stops_cleanly_on_a_signal(start, signum: int) -> None:
    env = _env(INTERNAL_SERVICE_TOKEN="another-token")
    process = start(env)
    lines = _read_listening_lines(process, 4)
    assert lines == [
        f"demo {service} service listening on {env[variable]}"
        for service, (variable, _) in URL_VARIABLES.items()
    ]
    answer = httpx.get(
        env["USER_SERVICE_URL"] + "/users/usr_1",
        headers={"X-Service-Account": "web-bff", "X-Internal-Token": "another-token"},
        trust_env=False,
    )
    assert answer.status_code == 200
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=15)
    assert process.returncode == 0
    assert "Traceback" not in stderr


def test_only_starts_the_named_services(start) -> None:
    env = _env()
    process = start(env, "--only", "order,user")
    assert _read_listening_lines(process, 2) == [
        f"demo user service listening on {env['USER_SERVICE_URL']}",
        f"demo order service listening on {env['ORDER_SERVICE_URL']}",
    ]
    assert httpx.get(env["ORDER_SERVICE_URL"] + "/_control/health", trust_env=False).json() == {
        "service": "order",
        "status": "ok",
    }
    with pytest.raises(httpx.ConnectError):
        httpx.get(env["CATALOG_SERVICE_URL"] + "/_control/health", trust_env=False)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=15)
    assert process.returncode == 0


def test_a_hanging_call_does_not_hold_up_shutdown(start) -> None:
    env = _env()
    process = start(env, "--only", "user")
    _read_listening_lines(process, 1)
    url = env["USER_SERVICE_URL"]
    httpx.put(url + "/_control/faults", json={"hang": True}, trust_env=False)
    answers: list[int] = []

    def hanging_call() -> None:
        response = httpx.get(
            url + "/users/usr_1",
            headers={"X-Service-Account": "web-bff", "X-Internal-Token": "demo-internal-token"},
            timeout=30,
            trust_env=False,
        )
        answers.append(response.status_code)

    thread = threading.Thread(target=hanging_call)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while httpx.get(url + "/_control/stats", trust_env=False).json()["total"] == 0:
            assert time.monotonic() < deadline, "the hanging call never reached the service"
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    finally:
        thread.join(timeout=30)
    assert process.returncode == 0
    assert "Traceback" not in stderr
    assert answers == [503]


def test_the_user_service_can_send_the_avatar_under_both_names(start) -> None:
    env = _env(INTERNAL_SERVICE_TOKEN="demo-internal-token")
    process = start(env, "--only", "user", "--user-avatar-field", "both")
    _read_listening_lines(process, 1)
    user = httpx.get(
        env["USER_SERVICE_URL"] + "/users/usr_1",
        headers={"X-Service-Account": "web-bff", "X-Internal-Token": "demo-internal-token"},
        trust_env=False,
    ).json()
    assert user["profileImageUrl"] == user["avatarUrl"]
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=15)


def test_an_unknown_avatar_field_mode_exits_2() -> None:
    result = _run(_env(), "--user-avatar-field", "photo")
    assert result.returncode == 2
    assert "--user-avatar-field" in result.stderr
    assert "Traceback" not in result.stderr
