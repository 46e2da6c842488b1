"""Draining on SIGTERM, over real HTTP against a live uvicorn server and the demo services."""

from __future__ import annotations

import asyncio
import signal
import subprocess

import httpx

from aggregation.tokens import mint_token
from tests.live import LiveBFF, base_env, seed


def test_sigterm_drains_then_exits(tmp_path, demo_services) -> None:
    demo_services.reset()
    env = base_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'drain.sqlite3'}",
        RATE_LIMITS="off",
        SHUTDOWN_DRAIN_SECONDS="1",
        SHUTDOWN_GRACE_SECONDS="5",
        **demo_services.env,
    )
    seed(env)
    # Each request waits on the user service, so all 20 are in flight at the signal.
    demo_services.set_faults("user", latency_ms=700)
    tokens = [mint_token("mobile", f"usr_{n}") for n in range(1, 21)]
    bff = LiveBFF(env, migrate=False)
    with bff:
        url = bff.url

        async def scenario():
            async with (
                httpx.AsyncClient(base_url=url, timeout=10) as slow,
                httpx.AsyncClient(base_url=url, timeout=10) as keep_alive,
            ):
                # A keep-alive connection opened before the signal, idle at it.
                assert (await keep_alive.get("/healthz")).status_code == 200
                in_flight = [
                    asyncio.ensure_future(
                        slow.get("/mobile/v1/home", headers={"Authorization": f"Bearer {t}"})
                    )
                    for t in tokens
                ]
                for _ in range(500):
                    if sum(demo_services.stats("user")["by_user"].values()) == len(tokens):
                        break
                    await asyncio.sleep(0.02)
                bff.process.send_signal(signal.SIGTERM)
                async with httpx.AsyncClient(base_url=url, timeout=5) as fresh:
                    ready = await fresh.get("/readyz")
                reused = await keep_alive.get("/healthz")
                return ready, reused, await asyncio.gather(*in_flight)

        ready, reused, responses = asyncio.run(scenario())
        assert ready.status_code == 503
        assert ready.json() == {"status": "draining"}
        assert reused.status_code == 200
        assert reused.headers["connection"] == "close"
        assert [r.status_code for r in responses] == [200] * len(tokens)
        try:
            bff.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            raise AssertionError("the BFF did not exit after draining") from None
        log = bff.log()
        assert "Unclosed" not in log, log[-2000:]
        assert "lifespan" not in log.lower() or "unsupported" not in log.lower()


def test_ctrl_c_closes_the_pools(tmp_path, demo_services) -> None:
    """`make run`'s Ctrl-C once printed "Unclosed client session" for every pool."""
    demo_services.reset()
    env = base_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'pools.sqlite3'}",
        RATE_LIMITS="off",
        **demo_services.env,
    )
    seed(env)
    bff = LiveBFF(env, migrate=False)
    with bff:
        token = mint_token("mobile", "usr_7")
        response = httpx.get(
            f"{bff.url}/mobile/v1/home", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert response.status_code == 200  # the service pools are open now
        bff.process.send_signal(signal.SIGINT)
        try:
            bff.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            raise AssertionError("the BFF did not exit on SIGINT") from None
        log = bff.log()
        assert "Unclosed" not in log, log[-2000:]
