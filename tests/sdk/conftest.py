"""The SDK tests share the retraining tests' small streams (``tests/models/retrain_helpers``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
