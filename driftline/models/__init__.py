"""Pure online retraining: learners, champion and challenger, promotions, signed versions.

Nothing here does I/O, reads the clock or the environment; event time comes from the events.
Adapters (``driftline.streams``, ``driftline.sdk``) publish the versions this returns and deliver
their artifacts.

- :class:`Retrainer`: one model's champion and challenger, and the versions they promote;
- :class:`RetrainStage`: a retrainer per model, over the join's items and the monitors' alerts;
- :class:`RetrainSpec`: what to learn with and when to promote (settings ``[models]``);
- :mod:`~driftline.models.artifact`: artifact bytes, digests, signatures, verified loading.
"""

from driftline.models.artifact import (
    FLAVOR,
    ArtifactError,
    Release,
    load_verified,
    pack,
    sign,
    verify_signature,
)
from driftline.models.compare import PairedTally, Verdict, sign_test
from driftline.models.features import encode_features
from driftline.models.learners import LEARNERS, make_learner
from driftline.models.retrainer import Retrainer
from driftline.models.spec import RetrainSpec
from driftline.models.stage import RetrainStage

__all__ = [
    "FLAVOR",
    "LEARNERS",
    "ArtifactError",
    "PairedTally",
    "Release",
    "RetrainSpec",
    "RetrainStage",
    "Retrainer",
    "Verdict",
    "encode_features",
    "load_verified",
    "make_learner",
    "pack",
    "sign",
    "sign_test",
    "verify_signature",
]
