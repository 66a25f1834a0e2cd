"""driftline's benchmarks: run by hand (``python -m bench.<name>``), never timed in tests."""
