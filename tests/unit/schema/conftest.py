"""Fixtures of the schema tests."""

from __future__ import annotations

import pytest

from tests.unit.schema.util import basic_schema
from vecstore.schema import CollectionSchema


@pytest.fixture
def schema() -> CollectionSchema:
    return basic_schema()
