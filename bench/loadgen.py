"""The load generator: wrk, closed loop, with latency percentiles reported from its side.

wrk is a C program with one event loop per thread, so on two shared cores it takes far
less CPU per request than any Python client would. A fixed URL runs with a Lua script that
only reports (wrk then builds each request in C); a rotating workload (one token or one
user per request) runs with a script that takes the next line of a file for each request.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

# done() runs once in wrk's main thread with the merged latency histogram (microseconds).
_REPORT_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
"""

# Each line of the file is "<path>\t<header value>": the request path and the value of the
# one header that changes per request (the bearer token, say). Threads start at different
# offsets so that no two requests in a run share a line until the file is used up.
_ROTATE_LUA = r"""
local threads = {}
local count = 0

setup = function(thread)
  thread:set("thread_index", count)
  count = count + 1
  table.insert(threads, thread)
end

init = function(args)
  paths, values, headers = {}, {}, {}
  header_name = args[2]
  for line in io.lines(args[1]) do
    local path, value = line:match("^([^\t]*)\t?(.*)$")
    table.insert(paths, path)
    table.insert(values, value)
  end
  for name, value in pairs(wrk.headers) do headers[name] = value end
  local thread_count = tonumber(args[3])
  position = math.floor(#paths * thread_index / thread_count)
end

request = function()
  position = position % #paths + 1
  if header_name ~= "-" then headers[header_name] = values[position] end
  return wrk.format("GET", paths[position], headers)
end
"""


class LoadGeneratorError(RuntimeError):
    """wrk is missing, failed, or printed no result."""


@dataclass(frozen=True)
class LoadResult:
    """One closed-loop run as the generator saw it; latencies in milliseconds."""

    connections: int
    threads: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    mean_ms: float
    max_ms: float
    errors: Mapping[str, int]

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    def to_json(self) -> dict:
        return asdict(self)


def wrk_binary() -> str:
    binary = shutil.which("wrk")
    if binary is None:
        raise LoadGeneratorError("wrk is not installed (Debian: apt-get install wrk)")
    return binary


def write_rotation(path: Path, lines: Iterable[tuple[str, str]]) -> Path:
    """Write a rotation file of (request path, header value) pairs."""
    path.write_text("".join(f"{request_path}\t{value}\n" for request_path, value in lines))
    return path


def run(
    url: str,
    *,
    workdir: Path,
    connections: int,
    duration_s: float,
    threads: int = 1,
    headers: Mapping[str, str] | None = None,
    rotation: Path | None = None,
    rotating_header: str | None = None,
    timeout_s: float = 5.0,
) -> LoadResult:
    """Run wrk against ``url`` (base URL plus path; with ``rotation``, only the base counts)."""
    script = workdir / ("rotate.lua" if rotation else "report.lua")
    script.write_text((_ROTATE_LUA if rotation else "") + _REPORT_LUA)
    command = [
        wrk_binary(),
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={max(1, round(duration_s))}s",
        f"--timeout={timeout_s:g}s",
        f"--script={script}",
    ]
    for name, value in (headers or {}).items():
        command.append(f"--header={name}: {value}")
    command.append(url)
    if rotation:
        command += ["--", str(rotation), rotating_header or "-", str(threads)]
    try:
        finished = subprocess.run(  # noqa: S603 - a fixed argv built here
            command,
            capture_output=True,
            text=True,
            timeout=duration_s + timeout_s + 30,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise LoadGeneratorError(f"wrk did not finish within {exc.timeout:g}s") from None
    line = next(
        (line for line in finished.stdout.splitlines() if line.startswith("BENCH_RESULT ")), None
    )
    if finished.returncode != 0 or line is None:
        raise LoadGeneratorError(
            f"wrk exited with {finished.returncode}: {(finished.stderr or finished.stdout)[-500:]}"
        )
    data = json.loads(line.removeprefix("BENCH_RESULT "))
    latency = data["latency_us"]
    seconds = data["duration_us"] / 1e6
    return LoadResult(
        connections=connections,
        threads=threads,
        duration_s=round(seconds, 2),
        requests=data["requests"],
        rps=round(data["requests"] / seconds, 1) if seconds else 0.0,
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        p999_ms=latency["p999"] / 1000,
        mean_ms=round(latency["mean"] / 1000, 3),
        max_ms=latency["max"] / 1000,
        errors=data["errors"],
    )
