"""The benchmark's streams, each with its drift point known, and their stationary twins.

Two families:

- **data drift**: ten features whose distribution changes. Gaussian features whose mean moves
  by 0.25, 0.5 or 1 standard deviation on 1 or 3 of them, at once or along a linear ramp of
  :data:`RAMP` events; and River's ``RandomRBF`` generator switching to another random mixture
  (``ConceptDriftStream``, abrupt or gradual) or starting to move its centroids
  (``RandomRBFDrift``).
- **concept drift**: a model's 0/1 errors. A Hoeffding tree is fitted on the first
  :data:`Size.train` events of River's SEA, STAGGER, Agrawal, Sine or Hyperplane generator and
  then frozen (a deployed model); ``ConceptDriftStream`` switches the generator to another
  concept, abruptly (``width=1``) or gradually (``width=``:data:`GRADUAL_WIDTH`).

The drift point is the first event of the change: the first shifted event, the start of a
ramp, the first event that ``ConceptDriftStream`` draws from the new concept with a probability
of at least 1% (abrupt: 1.8%, then 50% at the next event and 98% at the one after; gradual: the
sigmoid's centre is 1,148 events later and the new concept reaches 99% 2,297 events later).
Stationary streams are the same generators without the switch. Every stream is a pure function
of its :class:`Scenario`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from river import tree
from river.datasets import synth

__all__ = [
    "CONCEPTS",
    "GRADUAL_WIDTH",
    "N_FEATURES",
    "RAMP",
    "SHIFTS",
    "ConceptStream",
    "Scenario",
    "Size",
    "build_concept",
    "build_data",
    "scenarios",
]

N_FEATURES = 10
#: Mean shifts of the Gaussian features, in standard deviations.
SHIFTS = (1.0, 0.5, 0.25)
#: How many of the ten features move.
SHIFTED = (1, 3)
#: Events over which a gradual feature shift grows to its full size.
RAMP = 2000
#: ``ConceptDriftStream`` width of the gradual switches.
GRADUAL_WIDTH = 1000
#: How far each centroid of ``RandomRBFDrift`` moves per event once drift starts.
RBF_SPEED = 2e-4
#: Events after a drift point by which every switch is complete (the gradual one reaches 99%).
SETTLED = 2300
#: Least rise of the model's error rate that makes a second Hyperplane concept count.
MIN_HYPERPLANE_RISE = 0.1
#: The second concept of a generator draws its samples (and Hyperplane its weights) from
#: ``seed + OTHER_SEED``.
OTHER_SEED = 500

Generator = Callable[[int, bool], Any]


def _sea(seed: int, second: bool) -> Any:
    # Threshold 8 then 9.5 on x1 + x2, 10% label noise: the tree's error goes ~0.13 -> ~0.20.
    return synth.SEA(variant=3 if second else 0, noise=0.1, seed=seed)


def _stagger(seed: int, second: bool) -> Any:
    return synth.STAGGER(classification_function=2 if second else 0, seed=seed)


def _agrawal(seed: int, second: bool) -> Any:
    return synth.Agrawal(classification_function=2 if second else 0, seed=seed)


def _sine(seed: int, second: bool) -> Any:
    return synth.Sine(classification_function=2 if second else 0, seed=seed)


def _hyperplane(seed: int, second: bool) -> Any:
    # Three features: another seed draws another hyperplane (see _material_hyperplane).
    return synth.Hyperplane(seed=seed, n_features=3)


#: Concept-drift generators: ``make(seed, second)`` gives the first or the second concept.
CONCEPTS: dict[str, Generator] = {
    "agrawal": _agrawal,
    "hyperplane": _hyperplane,
    "sea": _sea,
    "sine": _sine,
    "stagger": _stagger,
}


@dataclass(frozen=True)
class Size:
    """How much of everything: repetitions, stream lengths, training and throughput events."""

    seeds: int  # repetitions of each drifting scenario
    stationary_seeds: int  # stationary streams per generator
    n: int  # events of a drifting stream
    drift_at: int  # its drift point
    stationary_n: int  # events of a stationary stream
    train: int  # events a concept-drift model is fitted on before monitoring starts
    throughput_events: int
    throughput_repeat: int
    elec2_events: int | None  # None: the whole file


@dataclass(frozen=True)
class Scenario:
    """One stream to score: its source, its length and where its drift starts."""

    name: str  # unique, e.g. "concept/sea/gradual/s2"
    family: str  # "data" or "concept"
    group: str  # the row group of the table
    source: str  # "gauss", "rbf-switch", "rbf-move" or a key of CONCEPTS
    n: int
    drift: int | None  # None: stationary
    seed: int
    gradual: bool = False
    shift: float = 0.0
    shifted: int = 0
    train: int = 0


@dataclass(frozen=True)
class ConceptStream:
    """A frozen model's predictions and the true labels, as integers."""

    predicted: npt.NDArray[np.int64]
    truth: npt.NDArray[np.int64]

    @property
    def errors(self) -> npt.NDArray[np.float64]:
        errors: npt.NDArray[np.float64] = (self.predicted != self.truth).astype(np.float64)
        return errors


def _shift_label(shift: float) -> str:
    return f"{shift:g}"


def scenarios(size: Size) -> list[Scenario]:
    """Every stream of a run, drifting then stationary, data family then concept family."""
    out: list[Scenario] = []
    at, n = size.drift_at, size.n
    for seed in range(size.seeds):
        for shift, k, gradual in itertools.product(SHIFTS, SHIFTED, (False, True)):
            how = "gradual" if gradual else "abrupt"
            out.append(
                Scenario(
                    f"data/shift{_shift_label(shift)}/k{k}/{how}/s{seed}",
                    "data",
                    f"data: shift {_shift_label(shift)} sd",
                    "gauss",
                    n,
                    at,
                    seed,
                    gradual,
                    shift,
                    k,
                )
            )
        for source, gradual in (("rbf-switch", False), ("rbf-switch", True), ("rbf-move", True)):
            how = "gradual" if gradual else "abrupt"
            name = f"data/{source}/{how}/s{seed}"
            out.append(Scenario(name, "data", "data: RandomRBF", source, n, at, seed, gradual))
        for source, gradual in itertools.product(sorted(CONCEPTS), (False, True)):
            how = "gradual" if gradual else "abrupt"
            name = f"concept/{source}/{how}/s{seed}"
            group = f"concept: {how}"
            out.append(
                Scenario(name, "concept", group, source, n, at, seed, gradual, train=size.train)
            )
    m = size.stationary_n
    for seed in range(size.stationary_seeds):
        s = 1000 + seed
        for source in ("gauss", "rbf-switch"):
            name = f"data/{source}/stationary/s{s}"
            out.append(Scenario(name, "data", "data: stationary", source, m, None, s))
        for source in sorted(CONCEPTS):
            name = f"concept/{source}/stationary/s{s}"
            group = "concept: stationary"
            out.append(Scenario(name, "concept", group, source, m, None, s, train=size.train))
    return out


class _Continued:
    """The rest of a generator's samples, posing as the generator (ConceptDriftStream reads its
    ``n_features`` and the like, then iterates it)."""

    def __init__(self, dataset: Any, samples: Iterator[Any]) -> None:
        self._dataset = dataset
        self._samples = samples

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dataset, name)

    def __iter__(self) -> Iterator[Any]:
        return self._samples


def _samples(scenario: Scenario, first: Any, second: Any, offset: int) -> Iterator[Any]:
    """``first``, switching to ``second`` at the drift point (``offset`` events come before).

    ``ConceptDriftStream`` counts samples from 1 and draws the new concept with probability
    ``1 / (1 + exp(-4 (count - position) / width))``. In River 0.26.1 that ``exp`` overflows
    (``OverflowError``) when ``position - count > 177 * width``, as for ``width=1`` at any
    position past 177: so the samples up to ``100 * width`` before the position (where the new
    concept's probability is below ``e**-400``) are drawn from ``first`` directly, and
    ``ConceptDriftStream`` takes over from there on the same iterator.
    """
    if scenario.drift is None:
        return iter(first)
    width = GRADUAL_WIDTH if scenario.gradual else 1
    # The drift point (counted scenario.drift + 1 from after the offset) is the first sample
    # drawn from the new concept with a probability of at least 1%.
    position = offset + scenario.drift + 1 + math.floor(width / 4 * math.log(99))
    lead = max(0, position - 100 * width)
    head = iter(first)
    mixed = synth.ConceptDriftStream(
        stream=cast(Any, _Continued(first, head)),
        drift_stream=second,
        position=position - lead,
        width=width,
        seed=scenario.seed,
    )
    return itertools.chain(itertools.islice(head, lead), mixed)


def build_data(scenario: Scenario) -> npt.NDArray[np.float64]:
    """The ``n x 10`` feature matrix of a data-drift scenario."""
    if scenario.source == "gauss":
        rng = np.random.default_rng(scenario.seed)
        x: npt.NDArray[np.float64] = rng.standard_normal((scenario.n, N_FEATURES))
        if scenario.drift is not None:
            steps = np.arange(scenario.n) - scenario.drift
            if scenario.gradual:
                amount = np.clip((steps + 1) / RAMP, 0.0, 1.0)
            else:
                amount = (steps >= 0).astype(np.float64)
            x[:, : scenario.shifted] += scenario.shift * amount[:, None]
        return x
    model = 100 + scenario.seed
    first = synth.RandomRBF(seed_model=model, seed_sample=scenario.seed, n_features=N_FEATURES)
    sample_seed = scenario.seed + OTHER_SEED
    if scenario.source == "rbf-switch":
        second: Any = synth.RandomRBF(
            seed_model=model + OTHER_SEED, seed_sample=sample_seed, n_features=N_FEATURES
        )
    else:  # the same centroids, moving from the drift point on
        second = synth.RandomRBFDrift(
            seed_model=model,
            seed_sample=sample_seed,
            n_features=N_FEATURES,
            change_speed=RBF_SPEED,
        )
    rows = itertools.islice(_samples(scenario, first, second, 0), scenario.n)
    return np.array([list(features.values()) for features, _ in rows], dtype=np.float64)


def _error(model: Any, samples: Iterator[Any], n: int) -> float:
    wrong = sum(model.predict_one(x) != y for x, y in itertools.islice(samples, n))
    return float(wrong) / n


def _material_hyperplane(model: Any, seed: int, skip: int) -> Any:
    """The second Hyperplane concept: the first of the seeds ``seed + OTHER_SEED``, ``+ 1``...
    whose hyperplane raises the model's error by at least :data:`MIN_HYPERPLANE_RISE` on
    1,000 of its events, against 1,000 events of the first concept not otherwise used (those
    after the first ``skip``). A random hyperplane can be close to the first one: without this
    some switches would leave the model's errors unchanged, a drift nothing can see in them.
    """
    base = _error(model, itertools.islice(iter(_hyperplane(seed, False)), skip, None), 1000)
    for other in range(seed + OTHER_SEED, seed + OTHER_SEED + 100):
        candidate = _hyperplane(other, True)
        if _error(model, iter(candidate), 1000) >= base + MIN_HYPERPLANE_RISE:
            return candidate
    raise RuntimeError(f"no Hyperplane seed in 100 makes a material change from seed {seed}")


def build_concept(scenario: Scenario) -> ConceptStream:
    """A Hoeffding tree fitted on the first ``train`` events, then its predictions on ``n``."""
    make = CONCEPTS[scenario.source]
    first = make(scenario.seed, False)
    head = iter(first)
    model: Any = tree.HoeffdingTreeClassifier()
    for features, label in itertools.islice(head, scenario.train):
        model.learn_one(features, label)
    if scenario.source == "hyperplane" and scenario.drift is not None:
        second = _material_hyperplane(model, scenario.seed, scenario.train + scenario.n)
    else:
        second = make(scenario.seed + OTHER_SEED, True)
    samples = _samples(scenario, _Continued(first, head), second, 0)
    predicted = np.zeros(scenario.n, dtype=np.int64)
    truth = np.zeros(scenario.n, dtype=np.int64)
    for i, (features, label) in enumerate(itertools.islice(samples, scenario.n)):
        guess = model.predict_one(features)
        predicted[i] = -1 if guess is None else int(guess)
        truth[i] = int(label)
    return ConceptStream(predicted, truth)
