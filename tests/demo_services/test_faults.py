"""Fault plans: parsing and decisions in isolation, then each fault kind through real HTTP."""

from __future__ import annotations

import asyncio
import random
import threading

import httpx
import orjson
import pytest

from demo_services.app import make_app
from demo_services.faults import NO_FAULTS, FaultPlan, FaultPlanError, FaultState
from demo_services.testing import DemoServices
from tests.timing import until

FULL_PLAN = {
    "latency_ms": 5,
    "jitter_ms": 2.5,
    "status": 503,
    "failure_rate": 0.25,
    "hang": False,
    "malformed_json": True,
    "oversized_bytes": 1000,
    "content_type": "text/html; charset=utf-8",
    "seed": 7,
}


def test_a_plan_round_trips_through_json() -> None:
    plan = FaultPlan.from_json(FULL_PLAN)
    assert plan.to_json() == FULL_PLAN
    assert FaultPlan.from_json(plan.to_json()) == plan


def test_an_empty_object_is_the_empty_plan() -> None:
    assert FaultPlan.from_json({}) == NO_FAULTS
    assert NO_FAULTS.to_json() == {
        "latency_ms": 0,
        "jitter_ms": 0,
        "status": None,
        "failure_rate": 1.0,
        "hang": False,
        "malformed_json": False,
        "oversized_bytes": None,
        "content_type": None,
        "seed": None,
    }


def test_failure_rate_and_seed_alone_change_nothing() -> None:
    assert NO_FAULTS.is_empty
    assert FaultPlan(failure_rate=0.5, seed=3).is_empty
    assert not FaultPlan(latency_ms=1).is_empty
    assert not FaultPlan(hang=True).is_empty
    assert not FaultPlan(content_type="text/plain").is_empty


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "must be a JSON object"),
        ("latency", "must be a JSON object"),
        ({"latency": 5}, "unknown key 'latency'; allowed keys: latency_ms"),
        ({"latency_ms": -1}, "latency_ms must be a number between 0 and"),
        ({"latency_ms": "10"}, "latency_ms must be a number"),
        ({"latency_ms": True}, "latency_ms must be a number"),
        ({"latency_ms": None}, "latency_ms must be a number"),
        ({"jitter_ms": -0.5}, "jitter_ms must be a number between 0 and"),
        ({"status": 99}, "status must be null or an integer between 100 and 599"),
        ({"status": 600}, "status must be null or an integer between 100 and 599"),
        ({"status": "500"}, "status must be null or an integer"),
        ({"status": 500.0}, "status must be null or an integer"),
        ({"status": True}, "status must be null or an integer"),
        ({"failure_rate": 1.5}, "failure_rate must be a number between 0 and 1"),
        ({"failure_rate": -0.1}, "failure_rate must be a number between 0 and 1"),
        ({"hang": "yes"}, "hang must be true or false"),
        ({"hang": 1}, "hang must be true or false"),
        ({"malformed_json": None}, "malformed_json must be true or false"),
        ({"oversized_bytes": 0}, "oversized_bytes must be null or an integer between 1 and"),
        ({"oversized_bytes": -3}, "oversized_bytes must be null or an integer"),
        ({"oversized_bytes": 1.5}, "oversized_bytes must be null or an integer"),
        ({"content_type": ""}, "content_type must be null or a non-empty printable ASCII"),
        ({"content_type": 5}, "content_type must be null or a non-empty printable ASCII"),
        ({"content_type": "text/html\r\nx: y"}, "content_type must be null or a non-empty"),
        ({"seed": "abc"}, "seed must be null or an integer"),
        ({"seed": 1.5}, "seed must be null or an integer"),
    ],
)
def test_an_invalid_plan_is_refused_with_a_clear_message(data: object, message: str) -> None:
    with pytest.raises(FaultPlanError) as caught:
        FaultPlan.from_json(data)
    assert message in str(caught.value)


def test_nullable_fields_accept_null() -> None:
    plan = FaultPlan.from_json(
        {"status": None, "oversized_bytes": None, "content_type": None, "seed": None}
    )
    assert plan == NO_FAULTS


def _decisions(plan: FaultPlan, count: int) -> list[tuple[float, bool]]:
    state = FaultState()
    state.install(plan)
    decisions = [state.decide() for _ in range(count)]
    return [(decision.delay_s, decision.fail) for decision in decisions]


def test_jitter_adds_a_uniform_delay_within_its_bounds() -> None:
    delays = [
        delay for delay, _ in _decisions(FaultPlan(latency_ms=100, jitter_ms=50, seed=3), 500)
    ]
    assert all(0.1 <= delay <= 0.15 for delay in delays)
    assert min(delays) < 0.105
    assert max(delays) > 0.145


def test_latency_without_jitter_is_exact() -> None:
    assert {delay for delay, _ in _decisions(FaultPlan(latency_ms=250), 20)} == {0.25}


def test_a_seeded_plan_replays_the_same_decisions() -> None:
    plan = FaultPlan(jitter_ms=10, status=500, failure_rate=0.5, seed=11)
    assert _decisions(plan, 50) == _decisions(plan, 50)


def test_failure_rate_decides_how_often_failure_faults_apply() -> None:
    half = [fail for _, fail in _decisions(FaultPlan(status=500, failure_rate=0.5, seed=1), 400)]
    assert 120 < sum(half) < 280
    assert not any(fail for _, fail in _decisions(FaultPlan(status=500, failure_rate=0), 50))
    assert all(fail for _, fail in _decisions(FaultPlan(status=500), 50))
    assert not any(fail for _, fail in _decisions(FaultPlan(latency_ms=1, failure_rate=1), 50))


def test_the_random_source_is_injected() -> None:
    class AlwaysHigh(random.Random):
        def random(self) -> float:
            return 0.99

    seeds: list[int | None] = []

    def factory(seed: int | None) -> random.Random:
        seeds.append(seed)
        return AlwaysHigh()

    state = FaultState(rng_factory=factory)
    state.install(FaultPlan(jitter_ms=100, status=500, failure_rate=0.9, seed=5))
    decision = state.decide()
    assert decision.delay_s == pytest.approx(0.099)
    assert decision.fail is False
    assert seeds == [None, 5]


# The delay, in process with the sleep injected: what the service waits, and that it waits
# before it answers, without the test waiting at all.


class Recorder:
    """An injected sleep and an ASGI ``send`` that log, in order, what the service did."""

    def __init__(self) -> None:
        self.events: list[tuple[str, float]] = []

    async def sleep(self, seconds: float) -> None:
        self.events.append(("slept", seconds))

    async def send(self, message: dict) -> None:
        if message["type"] == "http.response.start":
            self.events.append(("answered", message["status"]))


def _call_in_process(plan: FaultPlan, *, authorized: bool = True, calls: int = 1) -> Recorder:
    recorder = Recorder()
    app = make_app("user", "internal-token", faults=FaultState(sleep=recorder.sleep))
    app.faults.install(plan)
    headers = [(b"x-service-account", b"mobile-bff"), (b"x-internal-token", b"internal-token")]
    scope = {"type": "http", "method": "GET", "path": "/users/usr_1", "query_string": b"",
             "headers": headers if authorized else []}  # fmt: skip

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def run() -> None:
        for _ in range(calls):
            await app(scope, receive, recorder.send)

    asyncio.run(run())
    return recorder


def test_latency_delays_the_answer_by_latency_ms() -> None:
    assert _call_in_process(FaultPlan(latency_ms=300)).events == [
        ("slept", 0.3),
        ("answered", 200),
    ]


def test_jitter_comes_on_top_of_latency() -> None:
    events = _call_in_process(FaultPlan(latency_ms=100, jitter_ms=100, seed=1), calls=3).events
    assert [kind for kind, _ in events] == ["slept", "answered"] * 3
    delays = [value for kind, value in events if kind == "slept"]
    assert all(0.1 <= delay < 0.2 for delay in delays)
    assert len(set(delays)) == 3


def test_latency_also_delays_unauthorized_calls() -> None:
    events = _call_in_process(FaultPlan(latency_ms=200), authorized=False).events
    assert events == [("slept", 0.2), ("answered", 401)]


def test_no_plan_answers_without_sleeping() -> None:
    assert _call_in_process(NO_FAULTS).events == [("answered", 200)]


# Through real HTTP.


@pytest.fixture
def user_url(services: DemoServices) -> str:
    return services.urls["user"] + "/users/usr_1"


def test_a_delayed_answer_is_still_the_answer(
    services: DemoServices, client: httpx.Client, headers, user_url: str
) -> None:
    services.set_faults("user", latency_ms=100, jitter_ms=50, seed=1)
    response = client.get(user_url, headers=headers)
    assert response.status_code == 200
    assert response.json()["userId"] == "usr_1"
    assert client.get(user_url).status_code == 401  # delayed too (above), still refused


def test_status_replaces_the_answer(
    services: DemoServices, client: httpx.Client, headers, user_url: str
) -> None:
    services.set_faults("user", status=503)
    response = client.get(user_url, headers=headers)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": "injected"}


def test_a_seeded_failure_rate_gives_a_reproducible_mix(
    services: DemoServices, client: httpx.Client, headers, user_url: str
) -> None:
    def run() -> list[int]:
        services.set_faults("user", status=500, failure_rate=0.5, seed=42)
        return [client.get(user_url, headers=headers).status_code for _ in range(30)]

    first = run()
    assert set(first) == {200, 500}
    assert run() == first


def test_a_zero_failure_rate_never_fails(
    services: DemoServices, client: httpx.Client, headers, user_url: str
) -> None:
    services.set_faults("user", status=500, malformed_json=True, failure_rate=0)
    assert {client.get(user_url, headers=headers).status_code for _ in range(10)} == {200}


def test_hang_holds_the_call_without_blocking_anything_else(
    services: DemoServices, client: httpx.Client, headers, user_url: str
) -> None:
    services.set_faults("user", hang=True)
    outcome: list[str] = []

    def hanging_call() -> None:
        timeout = httpx.Timeout(10.0, read=0.5)
        with httpx.Client(timeout=timeout, trust_env=False) as impatient:
            try:
                impatient.get(user_url, headers=headers)
                outcome.append("answered")
            except httpx.ReadTimeout:
                outcome.append("timed out")

    thread = threading.Thread(target=hanging_call)
    thread.start()
    try:
        until(lambda: services.stats("user")["total"], interval=0.01,
              message="the hanging call never reached the service")  # fmt: skip
        health = client.get(services.urls["user"] + "/_control/health")
        assert health.json() == {"service": "user", "status": "ok"}
        other = client.get(services.urls["catalog"] + "/categories", headers=headers)
        assert other.status_code == 200
    finally:
        thread.join(timeout=15)
    assert outcome == ["timed out"]
    services.clear_faults("user")
    assert client.get(user_url, headers=headers).status_code == 200


def test_malformed_json_is_labelled_json_but_does_not_parse(
    services: DemoServices, client: httpx.Client, headers, user_url: str
) -> None:
    services.set_faults("user", malformed_json=True)
    response = client.get(user_url, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.content)
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(response.content)


def test_malformed_json_also_breaks_an_injected_status(
    services: DemoServices, client: httpx.Client, headers, user_url: str
) -> None:
    services.set_faults("user", status=500, malformed_json=True)
    response = client.get(user_url, headers=headers)
    assert response.status_code == 500
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(response.content)


def test_oversized_pads_the_real_object_to_at_least_the_size(
    services: DemoServices, client: httpx.Client, headers, user_url: str
) -> None:
    services.set_faults("user", oversized_bytes=3_000_000)
    response = client.get(user_url, headers=headers)
    assert response.status_code == 200
    assert len(response.content) >= 3_000_000
    assert int(response.headers["content-length"]) == len(response.content)
    body = orjson.loads(response.content)
    assert body["userId"] == "usr_1"
    assert set(body["_padding"]) == {"x"}


def test_oversized_and_malformed_together_give_a_big_invalid_body(
    services: DemoServices, client: httpx.Client, headers
) -> None:
    services.set_faults("catalog", oversized_bytes=200_000, malformed_json=True)
    response = client.get(services.urls["catalog"] + "/categories", headers=headers)
    assert len(response.content) >= 200_000
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(response.content)


def test_oversized_smaller_than_the_body_leaves_it_valid(
    services: DemoServices, client: httpx.Client, headers, user_url: str
) -> None:
    services.set_faults("user", oversized_bytes=1)
    response = client.get(user_url, headers=headers)
    assert orjson.loads(response.content)["userId"] == "usr_1"


def test_content_type_relabels_the_normal_body(
    services: DemoServices, client: httpx.Client, headers, user_url: str
) -> None:
    services.set_faults("user", content_type="text/html")
    response = client.get(user_url, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html"
    assert orjson.loads(response.content)["userId"] == "usr_1"


def test_faults_apply_to_one_service_only(
    services: DemoServices, client: httpx.Client, headers
) -> None:
    services.set_faults("user", status=500)
    assert client.get(services.urls["catalog"] + "/categories", headers=headers).status_code == 200


def test_control_endpoints_ignore_the_fault_plan(
    services: DemoServices, client: httpx.Client
) -> None:
    services.set_faults("user", status=500, latency_ms=0)
    assert client.get(services.urls["user"] + "/_control/health").status_code == 200


def test_put_returns_the_full_plan_and_get_shows_it(
    services: DemoServices, client: httpx.Client
) -> None:
    url = services.urls["order"] + "/_control/faults"
    response = client.put(url, json={"status": 502, "failure_rate": 0.5})
    assert response.status_code == 200
    expected = {**NO_FAULTS.to_json(), "status": 502, "failure_rate": 0.5}
    assert response.json() == expected
    assert client.get(url).json() == expected
    assert client.delete(url).json() == NO_FAULTS.to_json()
    assert client.get(url).json() == NO_FAULTS.to_json()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"latency_ms": -5}', "latency_ms must be a number between 0 and"),
        (b'{"explode": true}', "unknown key 'explode'"),
        (b"[1, 2]", "a fault plan must be a JSON object"),
        (b"{not json", "the body is not valid JSON"),
        (b"", "the body is not valid JSON"),
        (b'{"seed": 1, "pad": "' + b"x" * 70_000 + b'"}', "too large"),
    ],
)
def test_an_invalid_plan_is_a_bad_request_and_changes_nothing(
    services: DemoServices, client: httpx.Client, content: bytes, message: str
) -> None:
    services.set_faults("order", latency_ms=1)
    url = services.urls["order"] + "/_control/faults"
    response = client.put(url, content=content)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == "invalid_fault_plan"
    assert message in body["message"]
    assert client.get(url).json()["latency_ms"] == 1
