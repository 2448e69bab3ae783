"""Benchmarks users run (``vecstore bench``): see :mod:`vecstore.benchmark.indexes`."""
