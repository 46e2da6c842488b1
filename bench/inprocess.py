"""CPU per cache hit, in process: each variant's ASGI app called directly, no server, no wrk.

``wrk`` figures move with whatever else the two cores do and with how the kernel spreads
connections over the workers; the CPU one hit costs the application does not. This calls
each variant's ASGI application with a mobile home request for 100 warmed users, over and
over, in a child process per variant (variants patch the product), and reports the median
of the rounds' CPU microseconds per hit. ``--profile`` prints the product's cProfile.

    .venv/bin/python bench/inprocess.py                    # final, django_path, fastapi_peer
    .venv/bin/python bench/inprocess.py --variants final --profile
    .venv/bin/python bench/inprocess.py --accept-encoding gzip
    .venv/bin/python bench/inprocess.py --misses --hits 500   # CPU per fan-out instead
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
USERS = 100


def _measure(
    variant: str,
    tokens: list[str],
    hits: int,
    rounds: int,
    profile: bool,
    coding: str,
    misses: bool = False,
) -> dict:
    """In the child: build the variant, warm its cache, time ``hits`` hits per round."""
    import asyncio

    import uvloop

    sys.path.insert(0, str(ROOT))
    from bench import variants

    module, _, name = variants.VARIANTS[variant].partition(":")
    app = getattr(__import__(module, fromlist=[name]), name)
    scopes = [
        {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/mobile/v1/home",
            "raw_path": b"/mobile/v1/home",
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"127.0.0.1"),
                (b"authorization", f"Bearer {token}".encode()),
                (b"user-agent", b"wrk"),
                *([(b"accept-encoding", coding.encode())] if coding else []),
            ],
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000),
        }
        for token in tokens
    ]
    statuses: dict[int, int] = {}

    never = asyncio.Event()

    def receiver():
        sent = []

        async def receive() -> dict:
            if sent:  # Django's disconnect watch: the client never goes away here
                await never.wait()
            sent.append(True)
            return {"type": "http.request", "body": b"", "more_body": False}

        return receive

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            statuses[message["status"]] = statuses.get(message["status"], 0) + 1

    async def main() -> list[float]:
        for scope in scopes[:USERS]:  # misses: the demo services answer, entries are stored
            await app(dict(scope), receiver(), send)
        await asyncio.sleep(0.2)
        statuses.clear()
        per_hit = []
        for round_ in range(rounds):
            started = time.process_time()
            for n in range(hits):
                # --misses: a user never asked for before, every time; else the warm ones.
                index = USERS + round_ * hits + n if misses else n % USERS
                await app(dict(scopes[index]), receiver(), send)
            per_hit.append((time.process_time() - started) / hits * 1e6)
        return per_hit

    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        per_hit = uvloop.run(main())
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats(
            os.environ.get("BENCH_SORT", "tottime")
        ).print_stats(int(os.environ.get("BENCH_ROWS", "35")))
    else:
        per_hit = uvloop.run(main())
    return {"variant": variant, "us_per_hit": per_hit, "statuses": statuses}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", default="final,django_path,fastapi_peer")
    parser.add_argument("--hits", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--accept-encoding", default="", help="e.g. gzip (default: none sent)")
    parser.add_argument(
        "--misses",
        action="store_true",
        help="every request a cold user (a fan-out to the services, at zero latency)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        tokens = json.loads(Path(os.environ.pop("BENCH_TOKENS_FILE")).read_text())
        result = _measure(
            args.child,
            tokens,
            args.hits,
            args.rounds,
            args.profile,
            args.accept_encoding,
            args.misses,
        )
        print("RESULT " + json.dumps(result))
        return 0

    sys.path.insert(0, str(ROOT))
    from bench.stack import Stack

    with Stack() as stack:
        stack.prepare()
        count = USERS + (args.hits * args.rounds if args.misses else 0)
        tokens = list(stack.mint_tokens(range(1, count + 1)))
        if args.misses:  # CPU, not waiting: the services answer at once
            for service in ("user", "order", "recommendation"):
                stack.demo.set_faults(service, latency_ms=0)
        results = []
        for variant in args.variants.split(","):
            tokens_file = stack.workdir / "tokens.json"
            tokens_file.write_text(json.dumps(tokens))
            env = {**stack.env, "BENCH_TOKENS_FILE": str(tokens_file)}
            metrics_dir = stack.workdir / f"inprocess-{variant}"
            metrics_dir.mkdir()
            env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
            command = [sys.executable, __file__, "--child", variant]
            command += ["--hits", str(args.hits), "--rounds", str(args.rounds)]
            command += ["--profile"] if args.profile else []
            command += ["--accept-encoding", args.accept_encoding]
            command += ["--misses"] if args.misses else []
            done = subprocess.run(  # noqa: S603 - our own script
                command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
            )
            if args.profile or done.returncode != 0:
                print(done.stderr[-12000:], file=sys.stderr)
            if done.returncode != 0:
                return 1
            line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")][-1]
            results.append(json.loads(line.removeprefix("RESULT ")))
    print(f"{'variant':<16} {'CPU µs per request (median)':>34}  rounds        statuses")
    for result in results:
        rounds = ", ".join(f"{value:.0f}" for value in result["us_per_hit"])
        median = statistics.median(result["us_per_hit"])
        print(f"{result['variant']:<16} {median:>34.1f}  [{rounds}]  {result['statuses']}")
    base = statistics.median(results[-1]["us_per_hit"])
    for result in results[:-1]:
        ratio = base / statistics.median(result["us_per_hit"])
        print(f"{results[-1]['variant']} CPU / {result['variant']} CPU: x{ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
