"""``python -m bench.kafka --bootstrap HOST:PORT [--events N]``: throughput, latency, memory.

Needs a broker of your own (``KAFKA_LOCAL_PORT=49092 docker/kafka-local/kafka-local start``).
Each measurement runs in its own process, one after the other, on fresh topics:

1. publish ``N`` events (a prediction with 10 features and its label ``--label-lag`` events
   later: two records);
2. the **ceiling**: a bare confluent-kafka consumer, ``orjson.loads`` on every record of both
   topics, nothing else;
3. ``driftline run`` (``--workers`` processes, 1 by default) over the same topics: join,
   repartition by model, monitors, alerts, checkpoints, exactly-once commits; events/s from the
   first partition assignment to the commit that monitored the last joined record, and the
   ratio to the ceiling;
4. the **core alone**: :class:`driftline.pipeline.Pipeline` over the same events in memory
   (batches of 1,000; no Kafka, no codec), the most the join and the monitors allow;
5. with ``--latency-seconds`` > 0: a worker while events are published at ``--rate`` events/s
   with event time = wall-clock time (lateness 200 ms, commits every 100 ms); p50/p99 of the
   delay from an alert's triggering event to the alert being readable (read_committed);
   ``--unlabelled F`` leaves that share of the predictions without a label, so that the join
   holds more and more of them.

Peak memory (max RSS) is per process. Results go to ``bench/results/kafka.json``.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from bench.kafka import run

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "kafka.json"


def _alone(function: Any, *args: Any) -> Any:
    """``function(*args)`` in a fresh process (its own memory and GIL)."""
    return _together(1, function, *args)[0]


def _together(count: int, function: Any, *args: Any) -> list[Any]:
    """``function(*args)`` in ``count`` fresh processes at once."""
    with ProcessPoolExecutor(count) as pool:
        futures = [pool.submit(function, *args) for _ in range(count)]
        return [f.result() for f in futures]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.kafka", description=__doc__)
    parser.add_argument("--bootstrap", required=True, help="a broker of your own, host:port")
    parser.add_argument("--events", type=int, default=200_000, help="events (default 200,000)")
    parser.add_argument("--partitions", type=int, default=4, help="partitions per topic")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument(
        "--label-lag",
        type=int,
        default=50,
        help="events between a prediction and its label (default 50); a long lag makes the "
        "join hold many predictions",
    )
    parser.add_argument("--rate", type=int, default=2000, help="latency run: events/s")
    parser.add_argument("--latency-seconds", type=float, default=60.0, help="0: no latency run")
    parser.add_argument(
        "--unlabelled",
        type=float,
        default=0.0,
        help="latency run: the share of predictions that never get a label (the join holds them)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    settings = run.make_settings(args.bootstrap, args.partitions)
    seconds = _alone(run.publish, settings, args.events, args.label_lag)
    print(f"published {args.events:,} events ({2 * args.events:,} records) in {seconds:.1f}s")
    ceiling = _alone(run.ceiling, settings, args.events)
    print(f"ceiling (consume + orjson): {ceiling['events_per_s']:,.0f} events/s")
    runs = _together(args.workers, run.worker, settings)
    driftline = run.throughput(runs, args.events, args.partitions)
    ratio = driftline["events_per_s"] / ceiling["events_per_s"]
    print(
        f"driftline run ({args.workers} worker{'s' if args.workers > 1 else ''}): "
        f"{driftline['events_per_s']:,.0f} events/s = {ratio:.0%} of the ceiling "
        f"(target >= 50%); peak RSS {driftline['rss_mb']:,.0f} MB after {args.events:,} events "
        f"(ceiling process {ceiling['rss_mb']:,.0f} MB); {driftline['alerts']:.0f} alerts, "
        f"{driftline['restarts']:.0f} restarts"
    )
    pure = _alone(run.core, args.events, args.label_lag)
    print(
        f"core alone (Pipeline in memory, no Kafka): {pure['events_per_s']:,.0f} events/s; "
        f"driftline run = {driftline['events_per_s'] / pure['events_per_s']:.0%} of it"
    )
    results: dict[str, Any] = {"events": args.events, "partitions": args.partitions}
    results["label_lag"] = args.label_lag
    results.update(ceiling=ceiling, driftline=driftline, ratio=ratio, core=pure)
    if args.latency_seconds > 0:
        live = run.make_settings(
            args.bootstrap, args.partitions, lateness_ms=200, commit_interval_ms=100
        )
        latency = _alone(
            run.latency, live, args.rate, args.latency_seconds, args.workers, args.unlabelled
        )
        print(
            f"latency at {args.rate:,} events/s ({args.workers} worker"
            f"{'s' if args.workers > 1 else ''}, published at "
            f"{latency['published_per_s']:,.0f}/s): {latency['alerts']:.0f} alerts, "
            f"p50 {latency['alert_p50_s']:.2f}s, p99 {latency['alert_p99_s']:.2f}s from the "
            f"triggering event to a readable alert; commit p99 {latency['commit_p99_s']:.2f}s"
        )
        results["latency"] = {"rate": args.rate, "seconds": args.latency_seconds, **latency}
        results["latency"]["unlabelled"] = args.unlabelled
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
