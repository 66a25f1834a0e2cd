"""Reading a reference (e.g. the training set) from a file, for the monitors to compare with.

Two formats: JSON Lines of prediction events (grouped by their ``model``) or of plain objects of
feature values (used for every model), and CSV with a header row (used for every model; cells
that parse as numbers are numbers, empty cells are missing).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import orjson

from driftline.errors import ConfigError

__all__ = ["ALL_MODELS", "load_reference"]

#: The key of a reference that applies to every model.
ALL_MODELS = "*"


def _cell(text: str) -> Any:
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return text


def load_reference(path: str | Path) -> dict[str, dict[str, list[Any]]]:
    """``{model: {feature: [values...]}}`` from a ``.csv`` or JSON Lines file."""
    source = Path(path)
    if not source.is_file():
        raise ConfigError(f"reference file {source} does not exist")
    out: dict[str, dict[str, list[Any]]] = {}
    if source.suffix.lower() == ".csv":
        columns: dict[str, list[Any]] = out.setdefault(ALL_MODELS, {})
        with source.open(newline="") as handle:
            for row in csv.DictReader(handle):
                for name, text in row.items():
                    columns.setdefault(name, []).append(_cell(text or ""))
        return out
    with source.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ConfigError(f"{source}:{number}: not JSON ({exc})") from None
            if not isinstance(doc, dict):
                raise ConfigError(f"{source}:{number}: expected a JSON object")
            is_event = isinstance(doc.get("features"), dict)
            features = doc["features"] if is_event else doc
            model = str(doc.get("model", ALL_MODELS)) if is_event else ALL_MODELS
            columns = out.setdefault(model, {})
            for name, value in features.items():
                columns.setdefault(name, []).append(value)
    return out
