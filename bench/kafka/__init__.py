"""``python -m bench.kafka``: ``driftline run`` on a real broker against a bare consumer."""
