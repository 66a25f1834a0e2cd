"""``driftline replay``: JSON Lines in, contract alerts out, deterministic; dead letters."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from driftline.codec import decode, encode
from driftline.datasets import drifting_stream, elec2_stream

ELEC2 = Path(__file__).resolve().parents[2] / "shared" / "data" / "elec2.csv"


def write_jsonl(path: Path, events: list[object], extra: list[bytes] = ()) -> Path:  # type: ignore[assignment]
    with path.open("wb") as handle:
        for event in events:
            handle.write(encode(event) + b"\n")
        for line in extra:
            handle.write(line + b"\n")
    return path


def replay(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "driftline", "replay", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        cwd=tmp_path,
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("replay")
    stream = drifting_stream(16_000, seed=2, shift_at=6_000, concept_at=11_000)
    bad = [b"{not json", b'{"event_id": "z", "model": "demo", "features": 3, "prediction": 1}']
    predictions = write_jsonl(tmp / "p.jsonl", stream.predictions, bad)
    labels = write_jsonl(tmp / "l.jsonl", stream.labels)
    return predictions, labels


def test_replay_writes_contract_alerts_deterministically(
    tmp_path: Path, files: tuple[Path, Path]
) -> None:
    predictions, labels = files
    outputs = []
    for name in ("a", "b"):
        run = replay(
            tmp_path,
            "--predictions",
            str(predictions),
            "--labels",
            str(labels),
            "--alerts-out",
            f"{name}.jsonl",
            "--deadletter-out",
            f"{name}.dead.jsonl",
        )
        assert run.returncode == 0, run.stderr
        outputs.append((tmp_path / f"{name}.jsonl").read_bytes())
    assert outputs[0] == outputs[1]
    alerts = [decode("alert", line) for line in outputs[0].splitlines()]
    kinds = {(a.kind, a.feature) for a in alerts if a.status == "firing"}
    assert {("data_drift", "x0"), ("data_drift", "x1"), ("concept_drift", None)} <= kinds
    assert "16000 predictions, 16000 labels, 16000 joined" in run.stderr


def test_bad_lines_become_dead_letters_with_their_line(
    tmp_path: Path, files: tuple[Path, Path]
) -> None:
    predictions, labels = files
    run = replay(
        tmp_path,
        "--predictions",
        str(predictions),
        "--labels",
        str(labels),
        "--alerts-out",
        "a.jsonl",
        "--deadletter-out",
        "d.jsonl",
    )
    assert run.returncode == 0, run.stderr
    letters = [
        decode("deadletter", line) for line in (tmp_path / "d.jsonl").read_bytes().splitlines()
    ]
    assert [(d.reason, d.offset) for d in letters] == [("not_json", 16_001), ("schema", 16_002)]
    assert letters[1].detail.startswith("features: expected object")
    assert base64.b64decode(letters[0].value_b64 or "") == b"{not json"
    assert letters[0].topic == str(predictions)


def test_replay_needs_no_config_on_any_contract_stream(tmp_path: Path) -> None:
    """Elec2 as events, with its own features and no settings: monitored, and it drifts."""
    stream = elec2_stream(ELEC2)
    predictions = write_jsonl(tmp_path / "p.jsonl", stream.predictions[:12_000])
    labels = write_jsonl(tmp_path / "l.jsonl", stream.labels[:12_000])
    run = replay(
        tmp_path,
        "--predictions",
        str(predictions),
        "--labels",
        str(labels),
        "--alerts-out",
        "a.jsonl",
    )
    assert run.returncode == 0, run.stderr
    alerts = [orjson.loads(line) for line in (tmp_path / "a.jsonl").read_bytes().splitlines()]
    features = {a.get("feature") for a in alerts if a["kind"] == "data_drift"}
    assert features and features <= {
        "period",
        "nswprice",
        "nswdemand",
        "vicprice",
        "vicdemand",
        "transfer",
    }
    for alert in alerts:  # statistics only: no raw feature value in any alert
        assert "window" not in alert or all(
            not isinstance(v, list) for v in alert["window"].values()
        )


def test_replay_with_config_file(tmp_path: Path, files: tuple[Path, Path]) -> None:
    predictions, labels = files
    config = tmp_path / "driftline.toml"
    config.write_text('[monitor]\nfamily_alpha = 0.001\nsegment_by = ["region"]\n')
    run = replay(
        tmp_path,
        "--predictions",
        str(predictions),
        "--labels",
        str(labels),
        "--config",
        str(config),
        "--alerts-out",
        "a.jsonl",
    )
    assert run.returncode == 0, run.stderr
    alerts = [decode("alert", line) for line in (tmp_path / "a.jsonl").read_bytes().splitlines()]
    assert {("region", "eu"), ("region", "us")} <= {
        item for a in alerts for item in (a.segment or {}).items()
    }
    config.write_text("[monitor]\nfamily_alfa = 0.1\n")
    bad = replay(
        tmp_path,
        "--predictions",
        str(predictions),
        "--config",
        str(config),
        "--alerts-out",
        "a.jsonl",
    )
    assert bad.returncode == 1
    assert "family_alfa" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_reference_from_a_training_file(tmp_path: Path) -> None:
    """With the training set as reference, a feature that differs from it fires from the start."""
    import numpy as np

    live = drifting_stream(4_000, seed=8, shift_at=None, concept_at=None)
    predictions = write_jsonl(tmp_path / "p.jsonl", live.predictions)
    rng = np.random.default_rng(0)
    training = rng.standard_normal((3_000, 10))
    training[:, 3] += 1.0  # the model was trained where x3 was one std higher
    header = ",".join(f"x{j}" for j in range(10))
    rows = "\n".join(",".join(f"{v:.6f}" for v in row) for row in training)
    (tmp_path / "train.csv").write_text(header + "\n" + rows + "\n")
    for reference, expected in ((None, set()), ("train.csv", {"x3"})):
        extra = ["--reference", str(tmp_path / reference)] if reference else []
        run = replay(tmp_path, "--predictions", str(predictions), *extra, "--alerts-out", "a.jsonl")
        assert run.returncode == 0, run.stderr
        alerts = [
            decode("alert", line) for line in (tmp_path / "a.jsonl").read_bytes().splitlines()
        ]
        assert {a.feature for a in alerts if a.kind == "data_drift"} == expected


def test_read_events_decodes_each_line_as_the_codec_does(tmp_path: Path) -> None:
    """Line breaks, blank lines, bad lines: the events and dead letters of a line-by-line
    ``decode_or_dead_letter`` over the stripped lines (the fast decoder is only a shortcut)."""
    import gc

    from driftline.codec import Origin, decode_or_dead_letter
    from driftline.events import DeadLetter
    from driftline.streams.collector import REPLAY, collections_every
    from driftline.streams.replay import read_events

    good = [encode(p) for p in drifting_stream(5, seed=1).predictions]
    lines = [
        good[0] + b"\r\n",
        b"\n",
        b"  \t \r\n",
        b"  " + good[1] + b"  \n",
        b"{not json\n",
        b"\xff\xfe\n",
        b'{"event_id": "z", "model": "demo", "features": {}, "prediction": 1, "ts": 2.0}\n',
        b'{"event_id": "z", "model": "demo", "features": {}, "prediction": 1, "ts": 2.5}\n',
        b"x" * 1100 + b"\n",
        good[2] + b"\r",
        good[3],  # no line break at the end
    ]
    path = tmp_path / "p.jsonl"
    path.write_bytes(b"".join(lines))
    letters: list[DeadLetter] = []
    events = list(read_events(path, "prediction", letters, max_bytes=1000))
    expected, expected_letters = [], []
    with path.open("rb") as handle:
        numbered = list(enumerate(handle, start=1))  # lines end at b"\n" only, as replay reads
    for number, line in numbered:
        raw = line.rstrip(b"\r\n")
        if not raw.strip():
            continue
        origin = Origin(topic=str(path), offset=number)
        out = decode_or_dead_letter("prediction", raw, origin, now_ms=0, max_bytes=1000)
        (expected_letters if isinstance(out, DeadLetter) else expected).append(out)
    assert events == expected and len(events) == 3
    assert [(d.reason, d.detail, d.offset, d.value_b64) for d in letters] == [
        (d.reason, d.detail, d.offset, d.value_b64) for d in expected_letters
    ]
    before = gc.get_threshold()
    with collections_every(REPLAY):
        assert gc.get_threshold() == tuple(map(max, before, REPLAY))
    assert gc.get_threshold() == before
