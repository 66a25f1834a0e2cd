"""Small streams and alerts for the retraining tests."""

from __future__ import annotations

import numpy as np

from driftline.events import Alert, Label, Prediction

KEY = b"test-signing-key-0123456789abcdef"
T0 = 1_764_000_000_000


def outcomes(
    n: int,
    *,
    seed: int = 0,
    change_at: int | None = None,
    regression: bool = False,
    model: str = "m",
    start: int = 0,
) -> list[tuple[Prediction, Label]]:
    """Labelled events over features x0..x3 and a category ``c``.

    Classification: y = x0 + x1 > 0 (5% flipped), then x0 - x1 > 0 from ``change_at``.
    Regression: y = 2 x0 + x1 + noise, then -2 x0 + x1 + noise.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4))
    category = rng.choice(["a", "b", "c"], size=n)
    sign = np.ones(n)
    if change_at is not None:
        sign[change_at:] = -1.0
    out = []
    for i in range(n):
        ts = T0 + (start + i) * 1000
        features = {f"x{j}": float(x[i, j]) for j in range(4)}
        features["c"] = str(category[i])  # type: ignore[assignment]
        if regression:
            target: float | int = round(
                float(2 * sign[i] * x[i, 0] + x[i, 1]) + 0.1 * float(rng.standard_normal()), 6
            )
            if float(target).is_integer():
                target += 0.5
        else:
            truth = bool(x[i, 0] + sign[i] * x[i, 1] > 0) ^ bool(rng.random() < 0.05)
            target = int(truth)
        event_id = f"{model}-{start + i}"
        p = Prediction(event_id, model, features, 0, ts=ts)
        out.append((p, Label(event_id, model, target, ts=ts + 1)))
    return out


def concept_alert(model: str, ts: int, alert_id: str = "a1", kind: str = "concept_drift") -> Alert:
    return Alert(
        alert_id=alert_id,
        model=model,
        kind=kind,  # type: ignore[arg-type]
        status="firing",
        severity="warning",
        detector="error_rate",
        event_ts=ts,
        message="error rate up",
    )
