"""``python -m bench.detection [--quick]``: run the detection benchmark, print its table.

Raw results (every stream, every row, the targets) go to ``bench/results/detection.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import orjson

from bench.detection import report, run, streams
from bench.detection.scoring import summarise
from bench.detection.throughput import measure

ROOT = Path(__file__).resolve().parents[2]
ELEC2 = ROOT.parent / "shared" / "data" / "elec2.csv"
RESULTS = ROOT / "bench" / "results" / "detection.json"

SIZES = {
    "full": streams.Size(
        seeds=5,
        stationary_seeds=3,
        n=20_000,
        drift_at=10_000,
        stationary_n=50_000,
        train=3000,
        throughput_events=50_000,
        throughput_repeat=3,
        elec2_events=None,
    ),
    "quick": streams.Size(
        seeds=1,
        stationary_seeds=1,
        n=15_000,
        drift_at=8_000,
        stationary_n=20_000,
        train=2000,
        throughput_events=10_000,
        throughput_repeat=1,
        elec2_events=None,
    ),
    # For the test that the benchmark runs: numbers too small to mean anything.
    "tiny": streams.Size(
        seeds=1,
        stationary_seeds=1,
        n=3000,
        drift_at=1600,
        stationary_n=3000,
        train=300,
        throughput_events=1000,
        throughput_repeat=1,
        elec2_events=3000,
    ),
}

GROUPS = (
    *(f"data: shift {s:g} sd" for s in streams.SHIFTS),
    "data: RandomRBF",
    "data: all drifts",
    "data: stationary",
    "concept: abrupt",
    "concept: gradual",
    "concept: all drifts",
    "concept: stationary",
    run.GROUP_ELEC2,
)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.detection", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small run (well under a minute)")
    parser.add_argument("--size", choices=sorted(SIZES), help="run size (default full)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="processes for the detection streams (default 2); throughput always uses one",
    )
    parser.add_argument("--elec2", type=Path, default=ELEC2, help=f"Elec2 CSV (default {ELEC2})")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON results go")
    parser.add_argument("--no-throughput", action="store_true", help="skip the throughput part")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    size_name = args.size or ("quick" if args.quick else "full")
    size = SIZES[size_name]
    started = time.perf_counter()
    scenarios = streams.scenarios(size)
    extra: list[run.Task] = []
    if args.elec2.exists():
        extra.append((run.run_elec2, (args.elec2, size.elec2_events)))
    else:
        print(f"note: {args.elec2} not found, Elec2 rows left out", file=sys.stderr)
    outcomes = list(run.run_streams(scenarios, args.jobs, extra))
    detection_s = time.perf_counter() - started
    throughput = None
    if not args.no_throughput:
        throughput = measure(size.throughput_events, size.throughput_repeat)
    rows = summarise(outcomes, GROUPS)
    drifting = sum(1 for s in scenarios if s.drift is not None)
    print(
        f"driftline detection benchmark ({size_name}): {drifting} drifting streams of "
        f"{size.n:,} events (drift at {size.drift_at:,}), {len(scenarios) - drifting} stationary "
        f"of {size.stationary_n:,}; a drift is detected by the first alarm within "
        f"{run.HORIZON:,} events"
    )
    print()
    print(report.table(rows, throughput))
    goals = report.targets(rows, throughput)
    print()
    print("targets (driftline):")
    print("\n".join(goal.line() for goal in goals))
    print(f"\n{time.perf_counter() - started:.0f} s in all; raw results in {args.out}")
    results = {
        "size": size_name,
        "config": {
            **asdict(size),
            "horizon": run.HORIZON,
            "every_k": run.EVERY_K,
            "ramp": streams.RAMP,
            "gradual_width": streams.GRADUAL_WIDTH,
            "jobs": args.jobs,
        },
        "detection_seconds": detection_s,
        "rows": [row.to_dict() for row in rows],
        "targets": [asdict(goal) for goal in goals],
        "throughput": throughput,
        "streams": [o.to_dict() for o in outcomes],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
