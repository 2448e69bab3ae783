"""Fixtures of the segment tests: a local store in a temp dir and a small bundle of every kind."""

from __future__ import annotations

import pytest

from tests.unit.segment.segdata import make_columns
from vecstore.storage.object import LocalObjectStore
from vecstore.storage.segment import SegmentWriter


@pytest.fixture
def store(tmp_path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "data")


@pytest.fixture
def bundle(store):
    """(store, prefix, columns, manifest) of a 300-row segment holding every kind."""
    columns = make_columns(300)
    prefix = "segments/c1/p1/s1"
    manifest = SegmentWriter(store, prefix).write(**columns, schema_version=3)
    return store, prefix, columns, manifest
