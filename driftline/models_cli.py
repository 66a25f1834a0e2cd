"""``driftline models list|show|rollback``: the model registry from the command line.

Wired into :mod:`driftline.cli` as a sub-group; the settings object is the group's ``ctx.obj``.

- ``models list``: the current version of every model; ``models list MODEL``: its history;
- ``models show MODEL [VERSION]``: one version's metadata as JSON (the artifact summarised);
- ``models rollback MODEL [VERSION]``: publish the artifact of ``VERSION`` (default: the
  parent of the current version) as a new version, reason ``rollback``.
"""

from __future__ import annotations

import datetime as dt
import time

import click
import orjson

from driftline.codec import encode
from driftline.events import ModelVersion
from driftline.settings import Settings

__all__ = ["models"]


def _when(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _row(event: ModelVersion) -> str:
    where = "inline" if event.artifact is not None else (event.artifact_uri or "-")
    size = f"{event.artifact_size or 0:,}"
    parent = str(event.parent_version) if event.parent_version is not None else "-"
    return (
        f"{event.model:16} {event.version:>5} {event.reason:9} {_when(event.created_ts):19} "
        f"{parent:>6} {size:>12}  {where}"
    )


_HEADER = (
    f"{'MODEL':16} {'VER':>5} {'REASON':9} {'CREATED (UTC)':19} {'PARENT':>6} {'BYTES':>12}  WHERE"
)


@click.group()
def models() -> None:
    """Model versions: list them, show one, roll back to an older one."""


@models.command("list")
@click.argument("model", required=False)
@click.pass_obj
def list_versions(settings: Settings, model: str | None) -> None:
    """The current version of every model, or every version of MODEL."""
    from driftline.sdk.registry import ModelRegistry

    registry = ModelRegistry(settings)
    events = (
        registry.history(model)
        if model
        else sorted(registry.current().values(), key=lambda e: e.model)
    )
    if not events:
        click.echo(f"no versions of {model}" if model else "no models published yet", err=True)
        return
    click.echo(_HEADER)
    for event in events:
        click.echo(_row(event))


@models.command("show")
@click.argument("model")
@click.argument("version", type=int, required=False)
@click.pass_obj
def show(settings: Settings, model: str, version: int | None) -> None:
    """One version of MODEL (default: the current one), as JSON."""
    from driftline.sdk.registry import ModelRegistry

    event = ModelRegistry(settings).get(model, version)
    doc = orjson.loads(encode(event))
    if "artifact" in doc:
        doc["artifact"] = f"<{len(doc['artifact'])} base64 characters>"
    click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())


@models.command("rollback")
@click.argument("model")
@click.argument("version", type=int, required=False)
@click.pass_obj
def rollback(settings: Settings, model: str, version: int | None) -> None:
    """Serve VERSION of MODEL again (default: the current version's parent), as a new version."""
    from driftline.sdk.registry import ModelRegistry

    registry = ModelRegistry(settings)
    try:
        event = registry.rollback(model, version, now_ms=time.time_ns() // 1_000_000)
    finally:
        registry.close()
    restored = int(event.metrics["restored_version"])
    click.echo(
        f"model {model}: version {event.version} published, serving version {restored}'s "
        f"model (previous version {event.parent_version})"
    )
