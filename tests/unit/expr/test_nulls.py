"""NULL semantics, which follow Milvus segcore rather than SQL:

- a comparison, ``in``, ``like`` or contains on a NULL field is false, and so is its negation
  (``not``/``!=``/``not in``): ``value = not value and valid``;
- ``is null`` / ``is not null`` / ``exists`` are plain booleans, never NULL;
- ``and``/``or`` combine values as booleans and mark the result valid when *any* operand is
  (segcore ORs the valid bitmaps), so ``not (x > 1 and y > 1)`` with x NULL is true whatever y
  is, where SQL's three-valued logic would give NULL when y > 1 holds;
- JSON: a NULL JSON column behaves like a NULL field, but a missing key does not (the column is
  valid): ``meta["a"] != 1`` and ``not (meta["a"] == 1)`` are true for a missing key.
"""

from __future__ import annotations

import pytest

from tests.unit.expr.conftest import select
from vecstore.expr import DataType, Field, Schema

SCHEMA = Schema(
    [
        Field("id", DataType.INT64),
        Field("x", DataType.INT64, nullable=True),
        Field("y", DataType.INT64, nullable=True),
        Field("s", DataType.VARCHAR, nullable=True),
        Field("tags", DataType.ARRAY, element_type=DataType.INT64, nullable=True),
        Field("meta", DataType.JSON, nullable=True),
    ],
    primary_key="id",
)
ROWS = [
    dict(id=1, x=5, y=5, s="a", tags=[1], meta={"a": 1}),
    dict(id=2, x=None, y=5, s=None, tags=None, meta=None),
    dict(id=3, x=None, y=0, s="b", tags=[], meta={}),
    dict(id=4, x=0, y=None, s="", tags=[2], meta={"a": None}),
    dict(id=5, x=None, y=None, s=None, tags=None, meta=None),
]


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ("x > 1", [1]),
        ("not (x > 1)", [4]),  # NULL rows stay out after not
        ("x != 5", [4]),
        ("x not in [5]", [4]),
        ("not (x in [5])", [4]),
        ("x is null", [2, 3, 5]),
        ("not (x is null)", [1, 4]),
        ("x is not null", [1, 4]),
        ("not not (x > 1)", [1]),
        ("x == x", [1, 4]),
        ("x + y > 1", [1]),
        ("not (x + y > 1)", []),
        ("x > 1 or y > 1", [1, 2]),
        ("x > 1 and y > 1", [1]),
        # segcore's valid bitmap of and/or is the OR of its operands':
        ("not (x > 1 and y > 1)", [2, 3, 4]),
        ("not (x > 1 or y > 1)", [3, 4]),
        ("not (x > 1 or x < 1)", []),
        ("s like '%'", [1, 3, 4]),
        ("not (s like 'a%')", [3, 4]),
        ("array_contains(tags, 1)", [1]),
        ("not array_contains(tags, 1)", [3, 4]),
        ("not (array_length(tags) == 0)", [1, 4]),
        ("tags[0] != 1", [4]),
        ("not (tags[0] == 1)", [3, 4]),  # out of range is false but valid: its negation holds
        ("meta['a'] == 1", [1]),
        ("meta['a'] != 1", [3, 4]),  # missing or JSON null key: != holds; NULL column: not
        ("not (meta['a'] == 1)", [3, 4]),
        ("meta['a'] is null", [2, 3, 4, 5]),
        ("not exists meta['a']", [2, 3, 4, 5]),
        ("meta is null", [2, 5]),
        ("not (meta is null) and not exists meta['a']", [3, 4]),
    ],
)
def test_null_semantics(expr, want):
    assert select(expr, ROWS, SCHEMA) == want
