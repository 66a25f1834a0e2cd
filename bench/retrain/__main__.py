"""``python -m bench.retrain [--quick]``: the accuracy a serving process gets from the versions
driftline publishes, against models learning on every event, a static model and the previous
label, on Elec2 and on synthetic streams with a known concept change or none.

Prints one table and the issue's targets; raw results go to ``bench/results/retrain.json``.
See :mod:`bench.retrain.loop` for what each column measures.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.retrain import loop, streams
from driftline.models import RetrainSpec

ROOT = Path(__file__).resolve().parents[2]
ELEC2 = ROOT.parent / "shared" / "data" / "elec2.csv"
RESULTS = ROOT / "bench" / "results" / "retrain.json"
STATIC_SHARE = 0.10

#: Retraining configurations: the defaults, champion/challenger alone (no refresh of the
#: served version), the refresh test on a sliding window, and the defaults with the forest
#: (slow: Elec2 only).
CONFIGS: dict[str, dict[str, Any]] = {
    "default (HAT)": {},
    "no refresh (HAT)": {"refresh_every": 0},
    "window refresh": {"refresh_window": 1000},
    "default (ARF)": {"learner": "adaptive_random_forest"},
}


@dataclass(frozen=True)
class Size:
    elec2_rows: int | None
    elec2_delays: tuple[int, ...]
    synthetic_n: int
    arf_served_on: tuple[str, ...]  # streams also served with "default (ARF)" (slow)


SIZES = {
    "full": Size(None, (48, 1), 30_000, ("Elec2 (delay 48)", "Elec2 (delay 1)")),
    "quick": Size(15_000, (48,), 10_000, ()),
}


def _serve(stream: streams.BenchStream, config: str) -> loop.Result:
    return loop.serve(stream, RetrainSpec(**CONFIGS[config]), int(len(stream.rows) * STATIC_SHARE))


def _baselines(stream: streams.BenchStream) -> dict[str, float]:
    return loop.baselines(stream, RetrainSpec(), int(len(stream.rows) * STATIC_SHARE))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:5.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.retrain", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small run (a few minutes)")
    parser.add_argument("--elec2", type=Path, default=ELEC2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    size_name = "quick" if args.quick else "full"
    size = SIZES[size_name]
    started = time.perf_counter()
    bench_streams = [streams.elec2(args.elec2, size.elec2_rows, d) for d in size.elec2_delays]
    bench_streams += streams.synthetic(size.synthetic_n, seed=1)
    jobs = []
    with ProcessPoolExecutor(args.jobs) as pool:
        for stream in bench_streams:
            configs = [c for c in CONFIGS if "ARF" not in c or stream.name in size.arf_served_on]
            futures = {c: pool.submit(_serve, stream, c) for c in configs}
            jobs.append((stream, futures, pool.submit(_baselines, stream)))
        rows = [
            (stream, {c: f.result() for c, f in futures.items()}, base.result())
            for stream, futures, base in jobs
        ]
    print(
        f"driftline retraining benchmark ({size_name}): accuracy (%) on the last "
        f"{100 * (1 - STATIC_SHARE):.0f}% of each stream; labels arrive `delay` rows late; "
        "every-event learners get them as late"
    )
    header = (
        f"{'stream':26} {'config':16} {'served':>6} {'static':>6} {'HAT':>6} {'ARF':>6} "
        f"{'prev':>6} {'last':>6} {'best-served':>11} {'ver/10k':>7} {'init/drift/sched':>16} "
        f"{'change->ver':>11} {'s':>5}"
    )
    print(header)
    print("-" * len(header))
    out: list[dict[str, Any]] = []
    for stream, served, base in rows:
        best = max(base["hat"], base["arf"])
        for config, result in served.items():
            reasons = result.reasons()
            mix = f"{reasons['initial']}/{reasons['drift']}/{reasons['scheduled']}"
            delay = result.promotion_delay(stream.change_at)
            delay_text = "-" if stream.change_at is None else (str(delay) if delay else "none")
            print(
                f"{stream.name:26} {config:16} {_pct(result.served):>6} {_pct(base['static']):>6} "
                f"{_pct(base['hat']):>6} {_pct(base['arf']):>6} {_pct(base['previous']):>6} "
                f"{_pct(base['latest']):>6} "
                f"{100 * (best - result.served):11.1f} {result.per_10k():7.1f} {mix:>16} "
                f"{delay_text:>11} {result.seconds:5.0f}"
            )
            out.append(
                {
                    "stream": stream.name,
                    "config": config,
                    "spec": CONFIGS[config],
                    "change_at": stream.change_at,
                    "delay_rows": stream.delay,
                    **asdict(result),
                    "baselines": base,
                    "versions_per_10k": result.per_10k(),
                    "change_to_version": delay,
                }
            )
    print(f"\n{time.perf_counter() - started:.0f} s in all; raw results in {args.out}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps({"size": size_name, "rows": out}, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
