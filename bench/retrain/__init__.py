"""``python -m bench.retrain [--quick]``: served accuracy of the published model versions."""
