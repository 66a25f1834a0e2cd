"""Detection benchmark: driftline against River's bare detectors on streams with known drifts.

Run from the repository root: ``python -m bench.detection [--quick]``. See ``bench/README.md``
for what is measured and how it is scored.
"""
