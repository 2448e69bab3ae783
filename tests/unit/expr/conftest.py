"""Helpers of the filter tests: ``select`` runs a filter through both evaluators and returns the
ids of matching rows; the ``json_mode`` fixture runs a test once with Arrow's JSON reader and once
with the per-row fallback forced."""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit.expr.gen import to_table
from vecstore.expr import Schema, compile_filter, jsoncol


def select(expr: str, rows: list[dict], schema: Schema, params: dict | None = None) -> list:
    """Ids (``row["id"]``) of the rows the filter keeps; both evaluators must agree."""
    f = compile_filter(expr, schema, params)
    want = f.evaluate_rows(rows)
    got = f.evaluate(to_table(rows, schema))
    assert got.dtype == np.bool_ and got.shape == (len(rows),)
    np.testing.assert_array_equal(got, want, err_msg=f"vectorised vs reference for {expr!r}")
    return [r["id"] for r, keep in zip(rows, got) if keep]


@pytest.fixture(params=["arrow", "per-row"])
def json_mode(request, monkeypatch):
    """Runs the test with JSON decoded by Arrow's reader, then by the per-row fallback."""
    if request.param == "per-row":

        def refuse(arr):
            raise jsoncol._Refused

        monkeypatch.setattr(jsoncol, "_read_fast", refuse)
    return request.param
