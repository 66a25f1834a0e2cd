"""The ``driftline`` command. Settings are built here, once, and passed down to every command."""

from __future__ import annotations

import sys
from typing import Any

import click

from driftline.errors import DriftlineError
from driftline.settings import Settings

__all__ = ["main"]


@click.group()
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False),
    help="TOML settings file (below DRIFTLINE_* variables and flags in precedence).",
)
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
