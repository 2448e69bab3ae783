"""The vectorised evaluator against the row-by-row reference on random schemas, data and filters.

Each case draws a schema (every scalar type, ARRAY fields, a JSON field, the dynamic field, NULLs),
rows, an Arrow encoding of them (chunked or not, JSON as string, binary or pretty-printed text),
and random filters; both evaluators must agree on every row. ``VECSTORE_SEED`` changes the draw.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from tests.conftest import SEED
from tests.unit.expr.gen import ExprGen, random_rows, random_schema, to_table
from vecstore.expr import ExprError, JsonCache, compile_filter


def run_cases(seed: int, n_rows: int, n_exprs: int) -> tuple[int, int]:
    rng = np.random.default_rng([SEED, seed])
    schema = random_schema(rng)
    rows = random_rows(rng, schema, n_rows)
    table = to_table(rows, schema, rng)
    cache = JsonCache()
    checked = rejected = 0
    for _ in range(n_exprs):
        gen = ExprGen(rng, schema)
        text = gen.expr()
        try:
            f = compile_filter(text, schema, gen.params)
        except ExprError:
            rejected += 1
            continue
        want = f.evaluate_rows(rows)
        got = f.evaluate(table, cache=cache if rng.random() < 0.5 else None)
        if not np.array_equal(got, want):
            bad = np.flatnonzero(got != want)[:5]
            detail = [(int(i), bool(got[i]), {k: rows[i].get(k) for k in f.columns}) for i in bad]
            pytest.fail(
                f"seed {seed}: {text!r} params={gen.params}\n"
                f"rows (index, vectorised, columns): {detail}"
            )
        checked += 1
    return checked, rejected


@pytest.mark.parametrize("seed", range(12))
def test_vectorised_matches_reference(seed):
    checked, rejected = run_cases(seed, 120, 150)
    assert checked > 100, (checked, rejected)  # the generator stays mostly well-typed


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 140))
def test_vectorised_matches_reference_long(seed):
    run_cases(seed, 400, 400)


def test_same_filter_same_answer_across_block_boundaries(monkeypatch):
    """JSON decoding per block (the fallback) must line rows up across blocks."""
    from vecstore.expr import jsoncol

    monkeypatch.setattr(jsoncol, "BLOCK_ROWS", 7)
    rng = np.random.default_rng([SEED, zlib.crc32(b"blocks")])
    for _ in range(6):
        schema = random_schema(rng, dynamic=True)
        rows = random_rows(rng, schema, 50)
        table = to_table(rows, schema, rng)
        for _ in range(60):
            gen = ExprGen(rng, schema)
            text = gen.expr()
            try:
                f = compile_filter(text, schema, gen.params)
            except ExprError:
                continue
            np.testing.assert_array_equal(f.evaluate(table), f.evaluate_rows(rows), err_msg=text)
