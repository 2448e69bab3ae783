"""Shared fixtures: seeded generators, SIMD levels, float64 reference metrics."""

from __future__ import annotations

import os
import zlib

import numpy as np
import pytest

from vecstore import _core, set_simd_level

SEED = int(os.environ.get("VECSTORE_SEED", "20261126"))
LEVELS = _core.available_simd_levels()


@pytest.fixture
def rng(request) -> np.random.Generator:
    # Distinct but fixed stream per test, so tests do not depend on each other's draws.
    return np.random.default_rng([SEED, zlib.crc32(request.node.name.encode())])


@pytest.fixture(params=LEVELS)
def simd(request):
    """Runs the test once per SIMD level this CPU supports, restoring the best level after."""
    before = _core.simd_level()
    set_simd_level(request.param)
    yield request.param
    set_simd_level(before)
