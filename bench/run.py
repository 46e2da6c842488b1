"""``make bench``: the SPEC section 10 performance figures, as ratios measured in one run.

Scenarios (each prints a table and writes JSON to ``bench-results/``):

- ``fanout``: 20 closed-loop clients, a new cold user per request, ``GET /mobile/v1/home``
  with the user, order and recommendation services at 30/60/90 ms; the same pattern sent
  straight to the slowest service is the floor. Reports p50 and p99 as ratios to it.
- ``trivial``: a trivial async JSON view (``/bench/trivial``), 50 connections: the
  framework's ceiling on this machine.
- ``cached``, ``cached_gzip``, ``partner``: cache hits, 50 connections (``cached_gzip``
  with ``Accept-Encoding: gzip``: the cost of compression).
- ``breaker``: the fan-out's load with the recommendation service failing 30 % of calls
  (503): the share of fresh pages served degraded, which a breaker judging the failure
  rate keeps at ~30 % (a consecutive-failure breaker opened often enough to reach 51 %).
- Always: the bytes on the wire per surface and content coding.

``--variants`` serves other ASGI entry points (``bench/variants.py``) side by side for
before/after comparisons, and ``--rounds`` repeats the measurements in turn, variant after
variant, to average out a machine shared with other work (figures are medians):
``python bench/run.py --scenarios trivial --variants stock,final --rounds 3``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: make the project's packages importable

import httpx  # noqa: E402

from bench import loadgen, variants  # noqa: E402
from bench.loadgen import LoadResult  # noqa: E402
from bench.stack import LATENCIES_MS, OPS_HEADERS, BFFServer, Stack, StackError  # noqa: E402

RESULTS_DIR = ROOT / "bench-results"
FANOUT_CONNECTIONS = 20
TRIVIAL_CONNECTIONS = 50
# SPEC section 10: p50 within 4 % of the slowest service called directly, p99 within 1.25x.
FANOUT_TARGETS = {"p50_ratio": 1.02, "p99_ratio": 1.25}
# Cold users: every request of a measurement has its own user id, and the ranges of two
# measurements never overlap, so no cache (the demo services' or, later, the BFF's) helps.
_USERS_PER_MEASUREMENT = 8_000
_SUMMARY_FIELDS = ("rps", "p50_ms", "p90_ms", "p99_ms", "max_ms")


@dataclass
class Durations:
    """Seconds per measurement; ``--quick`` shortens them for a smoke run."""

    fanout_s: float = 20.0
    trivial_s: float = 10.0
    warmup_s: float = 3.0


@dataclass
class Run:
    """What the scenarios of one invocation share."""

    stack: Stack
    durations: Durations
    trivial_threads: int = 1
    next_user: int = 100_000
    direct: list[LoadResult] = field(default_factory=list)

    def users(self) -> range:
        first = self.next_user
        self.next_user += _USERS_PER_MEASUREMENT
        return range(first, first + _USERS_PER_MEASUREMENT)


@dataclass
class Outcome:
    """One scenario measured once against one server."""

    result: LoadResult
    extra: dict = field(default_factory=dict)


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


# --- scenarios -----------------------------------------------------------------------


def _metrics_summary(server: BFFServer) -> dict[str, float]:
    """Responses by status and degraded responses, from the BFF's own /metrics."""
    text = httpx.get(f"{server.url}/metrics", headers=OPS_HEADERS, timeout=5.0).text
    summary: dict[str, float] = {"degraded": 0.0}
    for line in text.splitlines():
        match = re.match(r'bff_requests_total\{.*status="(\d+)".*\} ([0-9.e+]+)', line)
        if match:
            key = f"status_{match[1]}"
            summary[key] = summary.get(key, 0) + float(match[2])
        elif line.startswith("bff_degraded_responses_total{"):
            summary["degraded"] += float(line.rsplit(" ", 1)[1])
    return summary


def _check_home(run: Run, server: BFFServer) -> None:
    """One request before the load: the page must be whole, or the figures mean nothing."""
    token = next(run.stack.mint_tokens([1]))
    response = httpx.get(
        f"{server.url}/mobile/v1/home", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    if response.status_code != 200 or response.json()["meta"]["degraded"]:
        raise StackError(f"GET /mobile/v1/home answered {response.status_code}: {response.text}")


def _cpu_ms(cpu_seconds: float, result: LoadResult) -> float:
    """The BFF's own CPU per request (both workers), in milliseconds."""
    return round(cpu_seconds * 1000 / result.requests, 3) if result.requests else 0.0


def measure_direct(run: Run) -> LoadResult:
    """The floor: the fan-out's load pattern sent straight to the slowest service."""
    stack = run.stack

    def rotation(name: str) -> Path:
        paths = ((f"/users/usr_{n}/recommendations?limit=6", "") for n in run.users())
        return loadgen.write_rotation(stack.workdir / name, paths)

    def load(name: str, seconds: float) -> LoadResult:
        return loadgen.run(
            stack.demo.urls["recommendation"],
            workdir=stack.workdir,
            connections=FANOUT_CONNECTIONS,
            duration_s=seconds,
            headers=stack.service_headers(),
            rotation=rotation(name),
        )

    load("direct-warmup.txt", run.durations.warmup_s)
    result = load("direct.txt", run.durations.fanout_s)
    run.direct.append(result)
    return result


def _cold_users(run: Run, server: BFFServer, path: str, client: str) -> Outcome:
    """Closed-loop load where every request is a new user: nothing can come from a cache.

    Latency ratios are to the slowest service called directly in the same round.
    """

    def load(seconds: float) -> LoadResult:
        tokens = run.stack.mint_tokens(run.users(), client=client)
        rotation = loadgen.write_rotation(
            run.stack.workdir / f"{client}-cold.txt",
            ((path, f"Bearer {token}") for token in tokens),
        )
        return loadgen.run(
            f"{server.url}{path}",
            workdir=run.stack.workdir,
            connections=FANOUT_CONNECTIONS,
            duration_s=seconds,
            rotation=rotation,
            rotating_header="Authorization",
        )

    load(run.durations.warmup_s)
    before = _metrics_summary(server)
    cpu_before = server.cpu_seconds()
    result = load(run.durations.fanout_s)
    cpu = server.cpu_seconds() - cpu_before
    after = _metrics_summary(server)
    extra = {
        "cpu_ms_per_request": _cpu_ms(cpu, result),
        "responses": {key: after[key] - before.get(key, 0) for key in after},
    }
    if run.direct:
        direct = run.direct[-1]
        extra["p50_ratio"] = round(result.p50_ms / direct.p50_ms, 4)
        extra["p99_ratio"] = round(result.p99_ms / direct.p99_ms, 4)
    return Outcome(result, extra)


def scenario_fanout(run: Run, server: BFFServer) -> Outcome:
    _check_home(run, server)
    return _cold_users(run, server, "/mobile/v1/home", "mobile")


def scenario_trivial(run: Run, server: BFFServer) -> Outcome:
    def load(seconds: float) -> LoadResult:
        return loadgen.run(
            f"{server.url}/bench/trivial",
            workdir=run.stack.workdir,
            connections=TRIVIAL_CONNECTIONS,
            duration_s=seconds,
            threads=run.trivial_threads,
        )

    load(min(2.0, run.durations.warmup_s))
    cpu_before = server.cpu_seconds()
    result = load(run.durations.trivial_s)
    cpu = server.cpu_seconds() - cpu_before
    return Outcome(result, {"cpu_ms_per_request": _cpu_ms(cpu, result)})


CACHED_CONNECTIONS = 50
CACHED_USERS = 100
PARTNER_PRODUCTS = 100


def _warm(server: BFFServer, requests: list[tuple[str, str]]) -> None:
    """Fill the cache: every entry the measurement will read, fetched once."""
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for path, authorization in requests:
            response = client.get(path, headers={"Authorization": authorization})
            if response.status_code != 200:
                raise StackError(f"warming {path} answered {response.status_code}")


def _hits(
    run: Run,
    server: BFFServer,
    requests: list[tuple[str, str]],
    name: str,
    headers: dict[str, str] | None = None,
) -> Outcome:
    """Closed-loop load on warm entries only; every response must be a cache hit."""
    _warm(server, requests)
    rotation = loadgen.write_rotation(run.stack.workdir / f"{name}.txt", requests * 20)

    def load(seconds: float) -> LoadResult:
        return loadgen.run(
            f"{server.url}{requests[0][0]}",
            workdir=run.stack.workdir,
            connections=CACHED_CONNECTIONS,
            duration_s=seconds,
            rotation=rotation,
            rotating_header="Authorization",
            threads=run.trivial_threads,
            headers=headers,
        )

    load(min(2.0, run.durations.warmup_s))
    hits_before = _cache_hits(server)
    cpu_before = server.cpu_seconds()
    result = load(run.durations.trivial_s)
    cpu = server.cpu_seconds() - cpu_before
    hits_after = _cache_hits(server)
    share = None  # a peer exports no cache metric
    if hits_after is not None and hits_before is not None and result.requests:
        share = round((hits_after - hits_before) / result.requests, 4)
    return Outcome(result, {"cpu_ms_per_request": _cpu_ms(cpu, result), "hit_share": share})


def _cache_hits(server: BFFServer) -> float | None:
    text = httpx.get(f"{server.url}/metrics", headers=OPS_HEADERS, timeout=5.0).text
    lines = [
        line
        for line in text.splitlines()
        if line.startswith("bff_cache_events_total{") and 'event="hit"' in line
    ]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines) if text else None


def scenario_cached(run: Run, server: BFFServer) -> Outcome:
    tokens = run.stack.mint_tokens(range(1, CACHED_USERS + 1))
    requests = [("/mobile/v1/home", f"Bearer {token}") for token in tokens]
    return _hits(run, server, requests, "cached")


def scenario_cached_gzip(run: Run, server: BFFServer) -> Outcome:
    """As ``cached``, every client sending ``Accept-Encoding: gzip``: what compression costs."""
    tokens = run.stack.mint_tokens(range(1, CACHED_USERS + 1))
    requests = [("/mobile/v1/home", f"Bearer {token}") for token in tokens]
    return _hits(run, server, requests, "cached-gzip", headers={"Accept-Encoding": "gzip"})


def scenario_dashboard(run: Run, server: BFFServer) -> Outcome:
    """The web dashboard, cold users: two stages (recommendations, then one catalog call)."""
    return _cold_users(run, server, "/web/v1/dashboard", "web")


def scenario_partner(run: Run, server: BFFServer) -> Outcome:
    """Partner catalog on shared entries (L1 in front of Redis), many partners."""
    tokens = list(run.stack.mint_tokens(range(1, 21), client="partner", scope="catalog:read"))
    requests = [
        (f"/partner/v2/products/prd_{n}", f"Bearer {tokens[n % len(tokens)]}")
        for n in range(1, PARTNER_PRODUCTS + 1)
    ]
    return _hits(run, server, requests, "partner")


BREAKER_FAILURE_RATE = 0.3


def scenario_breaker(run: Run, server: BFFServer) -> Outcome:
    """Recommendations fail 30 % of calls: how many fresh pages come back degraded."""
    demo = run.stack.demo
    latency = LATENCIES_MS["recommendation"]
    demo.set_faults("recommendation", latency_ms=latency, status=503,
                    failure_rate=BREAKER_FAILURE_RATE)  # fmt: skip
    try:
        outcome = _cold_users(run, server, "/mobile/v1/home", "mobile")
    finally:
        demo.set_faults("recommendation", latency_ms=latency)
    responses = outcome.extra["responses"]
    pages = responses.get("status_200", 0)
    outcome.extra["degraded_share"] = round(responses["degraded"] / pages, 4) if pages else 0.0
    return outcome


# What a peer (bench/peer_fastapi.py, mobile home only) is measured in.
PEER_SCENARIOS = ("fanout", "cached", "cached_gzip")
SCENARIOS: dict[str, Callable[[Run, BFFServer], Outcome]] = {
    "fanout": scenario_fanout,
    "dashboard": scenario_dashboard,
    "trivial": scenario_trivial,
    "cached": scenario_cached,
    "cached_gzip": scenario_cached_gzip,
    "partner": scenario_partner,
    "breaker": scenario_breaker,
}
TITLES = {
    "fanout": f"fan-out: {FANOUT_CONNECTIONS} clients, a cold user per request, services at "
    + "/".join(str(ms) for ms in LATENCIES_MS.values())
    + " ms",
    "trivial": f"trivial async JSON view: {TRIVIAL_CONNECTIONS} connections",
    "cached": f"cache hits, /mobile/v1/home: {CACHED_CONNECTIONS} connections, "
    f"{CACHED_USERS} warm users",
    "cached_gzip": f"cache hits with Accept-Encoding: gzip, /mobile/v1/home: "
    f"{CACHED_CONNECTIONS} connections, {CACHED_USERS} warm users",
    "dashboard": f"web dashboard: {FANOUT_CONNECTIONS} clients, a cold user per request "
    "(two stages: recommendations, then one batched catalog call)",
    "partner": f"partner catalog hits (shared entries, L1 + Redis): {CACHED_CONNECTIONS} "
    f"connections, {PARTNER_PRODUCTS} products",
    "breaker": f"circuit breaker: the fan-out's load, recommendations failing "
    f"{BREAKER_FAILURE_RATE:.0%} of calls; share of fresh pages degraded",
}


# --- bytes on the wire ---------------------------------------------------------------

WIRE_CODINGS = ("identity", "gzip", "zstd")


def wire_bytes(run: Run, server: BFFServer) -> dict[str, dict[str, int]]:
    """Body bytes on the wire per surface and content coding, and the mobile home's raw
    downstream bytes (what the three services sent for it), for one user or product."""
    stack = run.stack
    mobile, web = next(stack.mint_tokens([7])), next(stack.mint_tokens([7], client="web"))
    partner = next(stack.mint_tokens([1], client="partner", scope="catalog:read"))
    surfaces = {
        "mobile home": ("/mobile/v1/home", mobile),
        "web dashboard": ("/web/v1/dashboard", web),
        "partner product": ("/partner/v2/products/prd_7", partner),
        "partner products (10)": (
            "/partner/v2/products?ids=" + ",".join(f"prd_{n}" for n in range(1, 11)),
            partner,
        ),
    }
    sizes: dict[str, dict[str, int]] = {}
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for name, (path, token) in surfaces.items():
            sizes[name] = {}
            for coding in WIRE_CODINGS:
                headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": coding}
                with client.stream("GET", path, headers=headers) as response:
                    if response.status_code != 200:
                        raise StackError(f"{path} answered {response.status_code}")
                    sizes[name][coding] = len(b"".join(response.iter_raw()))
    with httpx.Client(timeout=10, headers=stack.service_headers()) as client:
        urls = stack.demo.urls
        sizes["mobile home"]["downstream"] = sum(
            len(client.get(url).content)
            for url in (
                f"{urls['user']}/users/usr_7",
                f"{urls['order']}/users/usr_7/orders?limit=3",
                f"{urls['recommendation']}/users/usr_7/recommendations?limit=6",
            )
        )
    return sizes


def report_wire(sizes: dict[str, dict[str, int]], meta: dict) -> None:
    print("\nbytes on the wire (response body), per content coding")
    print(f"  {'surface':<24}{'identity':>9}{'gzip':>7}{'zstd':>7}  gzip/identity")
    for name, by_coding in sizes.items():
        identity, gzipped = by_coding["identity"], by_coding["gzip"]
        print(f"  {name:<24}{identity:>9}{gzipped:>7}{by_coding['zstd']:>7}  "
              f"{gzipped / identity:.2f}")  # fmt: skip
    home = sizes["mobile home"]
    print(f"  mobile home: {home['downstream']} raw downstream bytes; body "
          f"{home['identity'] / home['downstream']:.3f} of them, gzip on the wire "
          f"{home['gzip'] / home['downstream']:.3f} (SPEC: 0.35 and 0.15); bodies under "
          "860 bytes are not compressed")  # fmt: skip
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = meta["started_at"].replace(":", "").replace("-", "")
    (RESULTS_DIR / f"{stamp}-wire.json").write_text(json.dumps({**meta, "bytes": sizes}) + "\n")


# --- reporting -----------------------------------------------------------------------


def _median(results: list[LoadResult]) -> dict[str, float]:
    return {
        name: round(statistics.median(getattr(result, name) for result in results), 2)
        for name in (*_SUMMARY_FIELDS, "failed")
    }


def _row(name: str, figures: dict[str, float], cpu: str = "", note: str = "") -> str:
    return (
        f"  {name:<22}{figures['rps']:9.1f}{figures['p50_ms']:8.1f}{figures['p90_ms']:8.1f}"
        f"{figures['p99_ms']:8.1f}{figures['max_ms']:8.1f}{int(figures['failed']):7d}{cpu:>9}"
        f"  {note}"
    )


def _extra_median(outcomes: list[Outcome], name: str) -> float | None:
    values = [outcome.extra[name] for outcome in outcomes if outcome.extra[name] is not None]
    return round(statistics.median(values), 4) if values else None


def report(run: Run, scenario: str, by_variant: dict[str, list[Outcome]], meta: dict) -> dict:
    rounds = max(len(outcomes) for outcomes in by_variant.values())
    median_note = f" (medians of {rounds} rounds)" if rounds > 1 else ""
    print(f"\n{TITLES[scenario]}{median_note}")
    ratios = "  p50/floor  p99/floor" if scenario in ("fanout", "dashboard") else ""
    if scenario in ("cached", "cached_gzip", "partner"):
        ratios = "  hit share"
    if scenario == "breaker":
        ratios = "  degraded share"
    print(
        f"  {'target':<22}{'req/s':>9}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}{'max ms':>8}"
        f"{'errors':>7}{'cpu ms':>9}{ratios}"
    )
    document: dict = {"scenario": scenario, **meta, "variants": {}}
    problems: list[str] = []
    for variant, outcomes in by_variant.items():
        figures = _median([outcome.result for outcome in outcomes])
        entry: dict = {"median": figures, "rounds": []}
        for outcome in outcomes:
            entry["rounds"].append({**asdict(outcome.result), **outcome.extra})
        entry["cpu_ms_per_request"] = _extra_median(outcomes, "cpu_ms_per_request")
        note = ""
        if scenario == "fanout":
            for ratio in FANOUT_TARGETS:
                entry[ratio] = _extra_median(outcomes, ratio)
            note = f"  x{entry['p50_ratio']:.3f}     x{entry['p99_ratio']:.3f}"
            for outcome in outcomes:
                responses = outcome.extra["responses"]
                odd = {k: v for k, v in responses.items() if k != "status_200" and v}
                if odd:
                    problems.append(f"{variant}: {odd} (a page that is not whole is no figure)")
                if outcome.result.requests > _USERS_PER_MEASUREMENT:
                    problems.append(f"{variant}: more requests than cold users; some repeated")
        if scenario == "dashboard":
            for ratio in FANOUT_TARGETS:
                entry[ratio] = _extra_median(outcomes, ratio)
            note = f"  x{entry['p50_ratio']:.3f}     x{entry['p99_ratio']:.3f}"
        if scenario in ("cached", "cached_gzip", "partner"):
            entry["hit_share"] = _extra_median(outcomes, "hit_share")
            share = entry["hit_share"]
            note = "  n/a (a peer)" if share is None else f"  {share:.3f}"
        if scenario == "breaker":
            entry["degraded_share"] = _extra_median(outcomes, "degraded_share")
            note = f"  {entry['degraded_share']:.3f} (calls failing: {BREAKER_FAILURE_RATE:.2f})"
        print(_row(variant, figures, f"{entry['cpu_ms_per_request']:.2f}", note))
        document["variants"][variant] = entry
    if scenario == "fanout":
        direct = _median(run.direct)
        print(_row("direct: slowest (90ms)", direct, "", "the floor"))
        rounds_direct = [asdict(result) for result in run.direct]
        document["direct_slowest"] = {"median": direct, "rounds": rounds_direct}
        document["targets"] = FANOUT_TARGETS
        print(
            "  cpu ms: the BFF's own CPU per request, both workers; ratios are to the direct "
            f"call in the same round. SPEC: p50 x{FANOUT_TARGETS['p50_ratio']}, "
            f"p99 x{FANOUT_TARGETS['p99_ratio']}"
        )
    peers = [name for name in by_variant if name in variants.PEERS]
    if "final" in by_variant and peers and scenario.startswith("cached"):
        final_rps = document["variants"]["final"]["median"]["rps"]
        for peer in peers:
            ratio = round(final_rps / document["variants"][peer]["median"]["rps"], 3)
            document[f"final_to_{peer}"] = ratio
            print(f"  final / {peer}: x{ratio:.2f} req/s (SPEC: at least x1.2)")
    for problem in problems:
        print(f"  WARNING {problem}")
    sys.stdout.flush()
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = meta["started_at"].replace(":", "").replace("-", "")
    path = RESULTS_DIR / f"{stamp}-{scenario}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    log(f"wrote {path.relative_to(ROOT)}")
    return document


def _report_compression_cost(reports: dict[str, dict]) -> None:
    """Cache hits with gzip against without, per variant both ran (SPEC: at most 10 %)."""
    if "cached" not in reports or "cached_gzip" not in reports:
        return
    plain, gzipped = reports["cached"]["variants"], reports["cached_gzip"]["variants"]
    for variant in plain.keys() & gzipped.keys():
        if variant in variants.PEERS:
            continue
        cost = 1 - gzipped[variant]["median"]["rps"] / plain[variant]["median"]["rps"]
        cpu = gzipped[variant]["cpu_ms_per_request"] - plain[variant]["cpu_ms_per_request"]
        print(f"\ncompression ({variant}): gzip hits {cost:+.1%} req/s below identity hits, "
              f"{cpu:+.3f} ms CPU per request (SPEC: at most 10 % of the hit rate)")  # fmt: skip


# --- command line --------------------------------------------------------------------


def _names(value: str, known: dict, what: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown {what} {unknown}; known: {', '.join(known)}")
    return names


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenarios",
        type=lambda value: _names(value, SCENARIOS, "scenario"),
        default=list(SCENARIOS),
        help=f"comma-separated, of: {', '.join(SCENARIOS)} (default: all)",
    )
    parser.add_argument(
        "--variants",
        type=lambda value: _names(value, variants.VARIANTS, "variant"),
        default=["final"],
        help=f"comma-separated ASGI entry points, of: {', '.join(variants.VARIANTS)} "
        "(default: final, the product's own application)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="repeat every measurement")
    parser.add_argument("--trivial-threads", type=int, default=1, help="wrk threads (trivial)")
    parser.add_argument("--quick", action="store_true", help="3-second runs, for a smoke test")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    durations = Durations(fanout_s=3, trivial_s=3, warmup_s=1) if args.quick else Durations()
    try:
        loadgen.wrk_binary()
    except loadgen.LoadGeneratorError as exc:
        log(str(exc))
        return 2

    def on_signal(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    meta = {
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "durations": asdict(durations),
        "latencies_ms": LATENCIES_MS,
        "server": "uvicorn --workers 2 --loop uvloop --http httptools",
        "load_generator": "wrk, closed loop, one thread",
    }
    outcomes: dict[str, dict[str, list[Outcome]]] = {
        scenario: {
            variant: []
            for variant in args.variants
            if variant not in variants.PEERS or scenario in PEER_SCENARIOS
        }
        for scenario in args.scenarios
    }
    with Stack() as stack:
        try:
            log("migrating and seeding a temporary database; starting the demo services")
            stack.prepare()
            run = Run(stack, durations, trivial_threads=args.trivial_threads)
            log(f"starting the BFF: {', '.join(args.variants)}")
            servers = stack.start_bffs([variants.VARIANTS[name] for name in args.variants])
            products = [s for n, s in zip(args.variants, servers, strict=True)
                        if n not in variants.PEERS]  # fmt: skip
            wire = wire_bytes(run, products[0]) if products else None
            for round_number in range(1, args.rounds + 1):
                for scenario in args.scenarios:
                    if scenario in ("fanout", "dashboard"):
                        direct = measure_direct(run)
                        log(f"round {round_number} direct: p50 {direct.p50_ms:.1f} ms, "
                            f"p99 {direct.p99_ms:.1f} ms")  # fmt: skip
                    for variant, server in zip(args.variants, servers, strict=True):
                        if variant in variants.PEERS and scenario not in PEER_SCENARIOS:
                            continue  # a peer serves the mobile home only
                        outcome = SCENARIOS[scenario](run, server)
                        outcomes[scenario][variant].append(outcome)
                        result = outcome.result
                        log(f"round {round_number} {scenario} {variant}: {result.rps:.1f} req/s, "
                            f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, "
                            f"{result.failed} errors")  # fmt: skip
            if wire is not None:
                report_wire(wire, meta)
            reports = {
                scenario: report(run, scenario, by_variant, meta)
                for scenario, by_variant in outcomes.items()
            }
            _report_compression_cost(reports)
        except KeyboardInterrupt:
            log("interrupted; stopping everything")
            return 130
        except (StackError, loadgen.LoadGeneratorError, subprocess.SubprocessError) as exc:
            log(f"failed: {exc}")
            return 1
        finally:
            # A second Ctrl-C must not cut the clean-up short and leave servers running.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
    log(f"done in {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
