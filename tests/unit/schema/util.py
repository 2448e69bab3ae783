"""Helpers shared by the schema tests: a basic schema and error matchers that check codes."""

from __future__ import annotations

import numpy as np
import pytest

from vecstore.schema import CollectionSchema, DataError, DataType, SchemaError


def basic_schema(**kw) -> CollectionSchema:
    """pk INT64 + FLOAT_VECTOR(4) + nullable VARCHAR(8), built as create_schema + add_field do."""
    s = CollectionSchema(**kw)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
    s.add_field("title", DataType.VARCHAR, max_length=8, nullable=True)
    return s


def data_error(match: str, *, field: str | None = None, row: int | None = None):
    """pytest.raises for a DataError whose message matches and that names field and row."""

    class _Check:
        def __enter__(self):
            self._ctx = pytest.raises(DataError, match=match)
            self._info = self._ctx.__enter__()
            return self._info

        def __exit__(self, *exc):
            out = self._ctx.__exit__(*exc)
            e = self._info.value
            assert e.code == 1100
            if field is not None:
                assert e.field == field, (e.field, str(e))
                assert f"field {field!r}" in str(e)
            if row is not None:
                assert e.row == row, (e.row, str(e))
                assert f"row {row}" in str(e)
            return out

    return _Check()


def schema_error(match: str, code: int = 1100, cls=SchemaError):
    class _Check:
        def __enter__(self):
            self._ctx = pytest.raises(cls, match=match)
            self._info = self._ctx.__enter__()
            return self._info

        def __exit__(self, *exc):
            out = self._ctx.__exit__(*exc)
            assert self._info.value.code == code, (self._info.value.code, str(self._info.value))
            assert isinstance(self._info.value, ValueError)
            return out

    return _Check()


def vectors(rng: np.random.Generator, n: int, dim: int = 4) -> np.ndarray:
    return rng.standard_normal((n, dim)).astype(np.float32)
