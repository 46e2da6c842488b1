"""Projection's cost per response: a surface's downstream payload through its demo v1 rules.

    .venv/bin/python bench/projection.py
    .venv/bin/python bench/projection.py --baseline /tmp/projection_before.py --rounds 9

Times ``ProjectionPlan.project_all`` with ``timeit`` on the mobile home (user, 3 orders,
6 recommendations: what the surface fetches) and the web dashboard (user, 10 orders, 12
enriched recommendations, 8 categories), built from the sample records the previews use.
With ``--baseline`` (repeatable), other versions of ``contract_core/projection.py`` (files)
are timed too, alternating with the current one round after round so that whatever else
the machine does hits them alike; the report gives each one's median and best, in µs.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import timeit
from functools import partial
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: make the project's packages importable


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _cases() -> dict[str, tuple]:
    """Surface name: (its spec, the demo's v1 rules, a downstream payload)."""
    os.environ.setdefault("DJANGO_DEBUG", "1")  # demo mode: the embedded secrets
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bff_project.settings")
    import django

    django.setup()
    from aggregation.endpoints import MOBILE_HOME, WEB_DASHBOARD, sample
    from contracts.demo import ENDPOINTS

    rules = {(demo.client, demo.name): demo.rules for demo in ENDPOINTS}
    enriched = {**sample("recommendation"), "product": sample("product")}
    mobile = {
        "user": dict(sample("user")),
        "recentOrders": [dict(sample("order")) for _ in range(3)],
        "recommendations": [dict(sample("recommendation")) for _ in range(6)],
    }
    web = {
        "user": dict(sample("user")),
        "recentOrders": [dict(sample("order")) for _ in range(10)],
        "recommendations": [dict(enriched) for _ in range(12)],
        "categories": [dict(sample("category")) for _ in range(8)],
    }
    return {
        "mobile home": (MOBILE_HOME, rules[MOBILE_HOME.key], mobile),
        "web dashboard": (WEB_DASHBOARD, rules[WEB_DASHBOARD.key], web),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--baseline",
        type=Path,
        action="append",
        default=[],
        help="another projection.py to compare with (repeatable)",
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=20_000, help="projections per timing")
    args = parser.parse_args()

    from contract_core import projection

    modules = {path.stem: _load(path, f"baseline_{i}") for i, path in enumerate(args.baseline)}
    modules["current"] = projection
    for surface, (spec, rules, payload) in _cases().items():
        plans = {label: module.compile_plan(spec, rules) for label, module in modules.items()}
        for plan in plans.values():
            assert plan.project_all(payload)[0] == plans["current"].project_all(payload)[0]
        times: dict[str, list[float]] = {label: [] for label in plans}
        for _ in range(args.rounds):
            for label, plan in plans.items():
                run = partial(plan.project_all, payload)
                seconds = timeit.timeit(run, number=args.number)
                times[label].append(seconds / args.number * 1e6)
        for label, found in times.items():
            print(
                f"{surface:14} {label:22} median {statistics.median(found):6.2f} µs"
                f"  best {min(found):6.2f} µs  ({args.rounds} rounds of {args.number})"
            )


if __name__ == "__main__":
    main()
