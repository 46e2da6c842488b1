"""No subject or id can change which internal path the BFF calls (SECURITY.md, "Internal URLs").

The property test sends arbitrary strings through the real downstream client (httpx over
the aiohttp transport, as production runs it) to a recording HTTP server and reads the
request line that arrived: exactly the intended path, with the value as one segment.
"""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Iterator
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from aggregation import calls
from aggregation.downstream import path_segment, services
from aggregation.fanout import CallContext
from aggregation.tokens import mint_token
from tests.aggregation.test_mobile_home import get

# Starts servers or subprocesses of its own.
pytestmark = pytest.mark.integration

DOT_SEGMENT_SUBJECTS = [".", "..", "a/..", "%2e%2e", "./usr_1", "..%2f", "usr_1/../..", ".usr"]


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every GET with a JSON body each call accepts; records the request target."""

    protocol_version = "HTTP/1.1"
    body = b'{"userId":"x","orders":[],"items":[],"products":[],"categories":[]}'

    def do_GET(self) -> None:
        self.server.targets.append(self.path)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def recorder() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.targets = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop for every example: one pooled client, as in a worker process."""
    loop = asyncio.new_event_loop()
    yield loop
    for client in list(services._clients.values()):
        loop.run_until_complete(client.aclose())
    services.reset()
    loop.close()


def _context() -> CallContext:
    return CallContext(client="mobile", endpoint="home", subject="x", trace_id="t" * 32,
                       timeout=2.0, params={})  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [(".", "%2E"), ("..", "%2E%2E"), ("a.b", "a%2Eb"), ("a/..", "a%2F%2E%2E"), ("%2e", "%252e")],
)
def test_dots_and_slashes_are_encoded(raw: str, encoded: str) -> None:
    assert path_segment(raw) == encoded


def test_an_empty_id_is_not_a_segment() -> None:
    with pytest.raises(ValueError, match="empty"):
        path_segment("")


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=st.text(min_size=1, max_size=40))
def test_no_value_changes_the_internal_path(value: str, recorder, loop, settings) -> None:
    url = f"http://127.0.0.1:{recorder.server_address[1]}"
    settings.BFF = {**settings.BFF, "SERVICES": dict.fromkeys(settings.BFF["SERVICES"], url)}
    context = _context()

    async def every_call() -> None:
        await calls.user(context, value)
        await calls.orders(context, value, 3)
        await calls.recommendations(context, value, 6)
        await calls.product(context, value)

    recorder.targets.clear()
    loop.run_until_complete(every_call())
    paths = [target.partition("?")[0] for target in recorder.targets]
    segment = path_segment(value)
    assert paths == [
        f"/users/{segment}",
        f"/users/{segment}/orders",
        f"/users/{segment}/recommendations",
        f"/products/{segment}",
    ]
    # The segment is one segment, no dot segment, and decodes back to the value exactly.
    assert "/" not in segment
    assert segment not in {".", ".."}
    assert unquote(segment) == value


@pytest.mark.parametrize("subject", DOT_SEGMENT_SUBJECTS)
def test_dot_segment_subjects_are_refused_and_reach_no_service(bff, subject: str) -> None:
    answer = get(authorization=f"Bearer {mint_token('mobile', subject)}")
    assert answer.status == 401
    assert answer.body["error"]["code"] == "UNAUTHENTICATED"
    for service in ("user", "order", "recommendation"):
        assert bff.stats(service)["total"] == 0
