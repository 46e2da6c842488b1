"""Rules the test suite holds itself to, checked on its source (issue #17).

No test sleeps longer than ``MAX_SLEEP_SECONDS`` at a time and none asserts on a
stopwatch: components with timing take a clock the test steps (tests/timing.py), and a
test waiting for another process polls a condition in short steps up to a deadline.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

from tests.timing import MAX_SLEEP_SECONDS

TESTS = Path(__file__).resolve().parent
CLOCKS = frozenset({"monotonic", "perf_counter", "time", "monotonic_ns", "perf_counter_ns"})


@functools.cache
def _trees() -> tuple[tuple[Path, ast.Module], ...]:
    return tuple((path, ast.parse(path.read_text())) for path in sorted(TESTS.rglob("*.py")))


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


_ARITHMETIC = (ast.Constant, ast.BinOp, ast.UnaryOp, ast.operator, ast.unaryop)


def _constant(node: ast.expr) -> float | None:
    """The number ``node`` always is (``4.2``, ``3 * 1.5``), None if it depends on names."""
    if not all(isinstance(part, _ARITHMETIC) for part in ast.walk(node)):
        return None
    value = eval(compile(ast.Expression(node), "<sleep>", "eval"), {"__builtins__": {}})  # noqa: S307 - arithmetic on constants only
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def long_sleeps(tree: ast.AST) -> list[tuple[int, float]]:
    """(line, seconds) of every ``sleep(<constant>)`` longer than the limit."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _name(node.func) == "sleep" and node.args:
            seconds = _constant(node.args[0])
            if seconds is not None and seconds > MAX_SLEEP_SECONDS:
                found.append((node.lineno, seconds))
    return found


def _is_clock_read(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and _name(node.func) in CLOCKS and not node.args


def _is_elapsed(node: ast.AST) -> bool:
    """``<clock>() - x`` or ``x - <clock>()``: a duration measured on the wall clock."""
    return (
        isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Sub)
        and (_is_clock_read(node.left) or _is_clock_read(node.right))
    )


def stopwatch_asserts(tree: ast.AST) -> list[int]:
    """Lines of asserts on a wall-clock duration, directly or through a name holding one
    anywhere in the module (``elapsed = perf_counter() - started``, then ``answer.elapsed``)."""
    durations = {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and any(_is_elapsed(n) for n in ast.walk(node.value))
        for target in node.targets
        if isinstance(target, ast.Name)
    }

    def holds_a_duration(node: ast.AST) -> bool:
        return (isinstance(node, ast.Name) and node.id in durations) or (
            isinstance(node, ast.Attribute) and node.attr in durations
        )

    return sorted(
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Assert)
        and any(_is_elapsed(n) or holds_a_duration(n) for n in ast.walk(node.test))
    )


def test_no_test_sleeps_longer_than_half_a_second() -> None:
    found = [
        f"{path.relative_to(TESTS)}:{line}: sleep({seconds})"
        for path, tree in _trees()
        for line, seconds in long_sleeps(tree)
    ]
    assert found == [], "inject a clock or poll a condition instead"


def test_no_test_asserts_on_a_stopwatch() -> None:
    found = [
        f"{path.relative_to(TESTS)}:{line}"
        for path, tree in _trees()
        for line in stopwatch_asserts(tree)
    ]
    assert found == [], "assert on outcomes, a fake clock, or the latency the product reports"


def test_the_rules_catch_what_they_are_about() -> None:
    caught = ast.parse(
        "import asyncio, time\n"
        "time.sleep(4.2)\n"
        "async def f():\n"
        "    await asyncio.sleep(30)\n"
        "    await asyncio.sleep(2 * 0.5)\n"
        "def g():\n"
        "    started = time.perf_counter()\n"
        "    elapsed = time.perf_counter() - started\n"
        "    assert elapsed < 1.5\n"
        "    assert time.monotonic() - started >= 0.3\n"
        "    assert answer.elapsed < 2\n"
    )
    assert long_sleeps(caught) == [(2, 4.2), (4, 30), (5, 1.0)]
    assert stopwatch_asserts(caught) == [9, 10, 11]
    allowed = ast.parse(
        "import time\n"
        "time.sleep(0.05)\n"
        "time.sleep(interval)\n"
        "def h(deadline):\n"
        "    assert time.monotonic() < deadline, 'never happened'\n"
        "    assert body['meta']['latencyMs'] < 1500\n"
    )
    assert long_sleeps(allowed) == []
    assert stopwatch_asserts(allowed) == []
