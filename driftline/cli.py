"""The ``driftline`` command. Settings are built here, once, and passed down to every command."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from driftline.errors import DriftlineError
from driftline.models_cli import models
from driftline.settings import Settings

__all__ = ["main"]

F = TypeVar("F", bound=Callable[..., Any])


def _file_in(flag: str, help: str, *, required: bool = False) -> Callable[[F], F]:
    """An option naming a file to read."""
    kind = click.Path(exists=True, dir_okay=False)
    return click.option(flag, type=kind, required=required, help=help)


def _file_out(flag: str, help: str, *, required: bool = False) -> Callable[[F], F]:
    """An option naming a file to write."""
    kind = click.Path(dir_okay=False, writable=True)
    return click.option(flag, type=kind, required=required, help=help)


@click.group()
@_file_in("--config", "TOML settings file (below DRIFTLINE_* variables and flags in precedence).")
@click.option("--bootstrap", help="Kafka bootstrap servers, e.g. 127.0.0.1:9092.")
@click.pass_context
def cli(ctx: click.Context, config: str | None, bootstrap: str | None) -> None:
    """driftline: drift detection and online retraining on Kafka event streams."""
    overrides: dict[str, Any] = {}
    if bootstrap:
        overrides["kafka"] = {"bootstrap": bootstrap}
    ctx.obj = Settings.load(config, **overrides)


@cli.group()
def topics() -> None:
    """Manage driftline's Kafka topics."""


@topics.command("create")
@click.pass_obj
def topics_create(settings: Settings) -> None:
    """Create the contract, dead-letter and internal topics (idempotent)."""
    from driftline.streams.topics import create_topics

    for name, outcome in sorted(create_topics(settings).items()):
        click.echo(f"{outcome:8} {name}")


@cli.command()
@click.option("--events", default=20_000, show_default=True, help="Predictions to publish.")
@click.pass_obj
def demo(settings: Settings, events: int) -> None:
    """Publish a synthetic model's events to Kafka and run driftline over them."""
    from driftline.demo import run_demo

    run_demo(settings, events, echo=click.echo)


@cli.command()
@_file_in("--predictions", "Prediction events, JSON Lines.", required=True)
@_file_in("--labels", "Label events, JSON Lines (merged in by event time).")
@_file_in("--config", "TOML settings (same file as the global --config).")
@_file_in(
    "--reference", "Reference feature values (the training set): CSV, or JSON Lines of events."
)
@_file_out("--alerts-out", "Where to write the alerts, JSON Lines.", required=True)
@_file_out("--deadletter-out", "Where to write the dead letters of bad lines, JSON Lines.")
@_file_out(
    "--models-out",
    "Also retrain ([models] settings; needs DRIFTLINE_MODELS_KEY) and write the model "
    "versions here, JSON Lines.",
)
@click.pass_obj
def replay(
    settings: Settings,
    predictions: str,
    labels: str | None,
    config: str | None,
    reference: str | None,
    alerts_out: str,
    deadletter_out: str | None,
    models_out: str | None,
) -> None:
    """Run the monitors over JSON Lines files and write the alerts they raise."""
    from pathlib import Path

    from driftline.streams.replay import replay as run_replay

    if config is not None:
        settings = Settings.load(config)
    spec = settings.pipeline_spec()
    if reference is not None:
        from dataclasses import replace

        from driftline.streams.reference import load_reference

        spec = replace(spec, references=load_reference(reference))
    with contextlib.ExitStack() as stack:
        alerts = stack.enter_context(open(alerts_out, "wb"))
        dead = stack.enter_context(open(deadletter_out, "wb")) if deadletter_out else None
        versions = stack.enter_context(open(models_out, "wb")) if models_out else None
        report = run_replay(
            Path(predictions),
            Path(labels) if labels else None,
            alerts,
            deadletter_out=dead,
            spec=spec,
            max_bytes=settings.codec.max_event_bytes,
            models_out=versions,
            models=settings.models,
        )
    counts = report.counts
    rate = counts["predictions"] / report.seconds if report.seconds else 0.0
    click.echo(
        f"{counts['predictions']} predictions, {counts['labels']} labels, "
        f"{counts['join_joined']} joined, {counts['alerts']} alerts, "
        f"{counts['dead_letters']} dead letters, {counts['model_versions']} model versions "
        f"in {report.seconds:.1f}s ({rate:,.0f} events/s)",
        err=True,
    )


@cli.command()
@click.option("--group-id", help="Consumer group of the workers (default: driftline).")
@click.option(
    "--instance-id",
    help="A name unique to this worker and stable across its restarts (e.g. the pod name).",
)
@click.option(
    "--exit-when-idle",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Flush everything and exit after this long without records (tests, backfills).",
)
@click.option("--metrics-port", type=int, help="Port of /metrics; 0 turns it off.")
@click.pass_obj
def run(
    settings: Settings,
    group_id: str | None,
    instance_id: str | None,
    exit_when_idle: float | None,
    metrics_port: int | None,
) -> None:
    """Join labels, monitor the models and publish alerts, on Kafka, until SIGTERM or SIGINT."""
    import logging

    from driftline.streams.runtime import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    given = {"group_id": group_id, "instance_id": instance_id, "exit_when_idle": exit_when_idle}
    updates: dict[str, Any] = {
        "run": settings.run.model_copy(update={k: v for k, v in given.items() if v is not None})
    }
    if metrics_port is not None:
        updates["metrics"] = settings.metrics.model_copy(update={"port": metrics_port})
    report = run_worker(settings.model_copy(update=updates))
    click.echo(report.summary(), err=True)


@cli.command("faust")
@click.option("--group-id", help="Consumer group prefix of the workers (default: driftline).")
@click.option(
    "--exit-when-idle",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Flush everything and exit after this long without records (tests, backfills).",
)
@click.option(
    "--loglevel",
    type=click.Choice(["crit", "error", "warn", "info", "debug"]),
    default="info",
    show_default=True,
)
@click.pass_obj
def faust_worker(
    settings: Settings, group_id: str | None, exit_when_idle: float | None, loglevel: str
) -> None:
    """Join labels, monitor (and retrain) the models and publish alerts (and model versions)
    with faust-streaming, at least once, until SIGTERM or SIGINT."""
    from driftline.streams.faust_app import run_faust

    given = {"group_id": group_id, "exit_when_idle": exit_when_idle}
    run_settings = settings.run.model_copy(update={k: v for k, v in given.items() if v is not None})
    run_faust(settings.model_copy(update={"run": run_settings}), loglevel=loglevel)


cli.add_command(models)  # `driftline models list|show|rollback`, in driftline/models_cli.py


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the CLI and turns driftline's errors into one line and exit code 1."""
    try:
        cli.main(args=argv, prog_name="driftline", standalone_mode=False)
    except DriftlineError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
