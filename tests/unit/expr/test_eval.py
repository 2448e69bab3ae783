"""Each operator on typed fields and ARRAY fields, checked against hand-computed answers (and by
``select`` against the reference evaluator)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tests.unit.expr.conftest import select
from tests.unit.expr.gen import to_table
from vecstore.errors import InvalidArgument
from vecstore.expr import DataType, Field, Schema, compile_filter, evaluate

I64_MAX, I64_MIN = (1 << 63) - 1, -(1 << 63)
SCHEMA = Schema(
    [
        Field("id", DataType.INT64),
        Field("i8", DataType.INT8, nullable=True),
        Field("i64", DataType.INT64),
        Field("f", DataType.FLOAT),
        Field("d", DataType.DOUBLE, nullable=True),
        Field("s", DataType.VARCHAR, nullable=True),
        Field("b", DataType.BOOL),
        Field("tags", DataType.ARRAY, element_type=DataType.VARCHAR, nullable=True),
        Field("nums", DataType.ARRAY, element_type=DataType.INT64),
        Field("fl", DataType.ARRAY, element_type=DataType.FLOAT),
    ],
    primary_key="id",
)
ROWS = [
    dict(
        id=1,
        i8=5,
        i64=10,
        f=1.1,
        d=2.5,
        s="apple",
        b=True,
        tags=["a", "b"],
        nums=[1, 2, 3],
        fl=[1.1, 2.0],
    ),
    dict(id=2, i8=None, i64=-7, f=2.0, d=None, s=None, b=False, tags=None, nums=[], fl=[]),
    dict(
        id=3,
        i8=-128,
        i64=I64_MAX,
        f=-0.5,
        d=-1.0,
        s="Apple",
        b=True,
        tags=["c"],
        nums=[7],
        fl=[0.1],
    ),
    dict(
        id=4, i8=127, i64=0, f=3.25, d=float("nan"), s="", b=False, tags=[], nums=[4, 5], fl=[3.25]
    ),
    dict(
        id=5,
        i8=0,
        i64=I64_MIN,
        f=1e10,
        d=1e300,
        s="a%b_c\\d",
        b=True,
        tags=["a", "é", "😀"],
        nums=[1 << 62, -5],
        fl=[],
    ),
    dict(
        id=6,
        i8=1,
        i64=3,
        f=1.100000023841858,
        d=0.1,
        s="éclair\nnew",
        b=False,
        tags=["b"],
        nums=[3, 3],
        fl=[2.0, 2.0],
    ),
]


def ids(expr, params=None):
    return select(expr, ROWS, SCHEMA, params)


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ("i64 > 0", [1, 3, 6]),
        ("i64 >= 0 and i64 <= 3", [4, 6]),
        ("i8 > 300", []),  # out of the column type's range: still exact
        ("i8 < 300", [1, 3, 4, 5, 6]),
        ("i8 == -128", [3]),
        ("f == 1.1", [1, 6]),  # FLOAT compares with the constant rounded to float32
        ("f > 1.1", [2, 4, 5]),
        ("f == 1.100000023841858", [1, 6]),
        ("f == 10000000000", [5]),
        ("d == 2.5", [1]),
        ("d != 2.5", [3, 4, 5, 6]),  # NaN != 2.5; the NULL row is out
        ("d > 0", [1, 5, 6]),
        ("s > 'a'", [1, 5, 6]),  # bytewise: 'é' sorts after 'a'
        ("s < 'B'", [3, 4]),
        ("s == ''", [4]),
        ("b == true", [1, 3, 5]),
        ("b != true", [2, 4, 6]),
        ("b > false", [1, 3, 5]),
        ("3 < i64", [1, 3]),
        ("f < d", [1, 5]),
        ("i64 == i8 + 5", [1]),
    ],
)
def test_comparisons(expr, want):
    assert ids(expr) == want


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ("id in [1, 3, 99]", [1, 3]),
        ("id not in [1, 3]", [2, 4, 5, 6]),
        ("i8 not in [5]", [3, 4, 5, 6]),
        ("i8 in []", []),
        ("s in ['apple', '']", [1, 4]),
        ("f in [1.1, 3.25]", [1, 4, 6]),
        ("d in [0.1, 7]", [6]),
        ("b in [true]", [1, 3, 5]),
        ("i64 in [9223372036854775807, -9223372036854775807 - 1]", [3, 5]),
        ("id in {ids}", [2, 4]),
    ],
)
def test_in(expr, want):
    assert ids(expr, {"ids": [2, 4]}) == want


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ('s like "app%"', [1]),
        ('s like "%le"', [1, 3]),
        ('s like "%pp%"', [1, 3]),
        ('s like "apple"', [1]),
        ('s like "_pple"', [1, 3]),
        ('s like "a\\\\%b%"', [5]),  # \% is a literal percent sign
        ('s like "%\\\\\\\\%"', [5]),  # \\ is a literal backslash
        ('s like "a_b\\\\_c%"', [5]),
        ('s like "%_"', [1, 3, 5, 6]),
        ('s like "%"', [1, 3, 4, 5, 6]),
        ('s like ""', [4]),
        ('s like "éclair_new"', [6]),  # _ matches a newline, and é is one character
        ('s like "_clair%"', [6]),
        ('s like "a.ple"', []),  # regex metacharacters are literal
        ('s like "%p%e"', [1, 3]),
        ('s LIKE "A%"', [3]),  # case-sensitive
        ("s like {pat}", [1]),
    ],
)
def test_like(expr, want):
    assert ids(expr, {"pat": "ap%"}) == want


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ("i64 % 2 == 1", [3, 6]),
        ("i64 % 2 == -1", [2]),  # C remainder: the dividend's sign
        ("i64 / 2 == -3", [2]),  # truncation toward zero
        ("i64 + 1 < 0", [2, 3, 5]),  # int64 wraps
        ("i64 * 2 == -2", [3]),
        ("-i64 == 7", [2]),
        ("-i64 < 0", [1, 3, 5, 6]),  # -INT64_MIN wraps to itself
        ("f * 2 > 4", [4, 5]),
        ("i8 ** 2 > 100", [3, 4]),
        ("i64 + i8 > 10", [1, 3, 4]),
        ("d / 0.5 > 4", [1, 5]),
        ("i64 / (i8 - i8) == 1", []),  # a zero divisor from a column makes the row NULL
        ("not (i64 / (i8 - i8) == 1)", []),
        ("(i64 - 1) * 3 + i8 == 32", [1]),
        ("i64 % 3 + i64 / 3 == 4", [1]),
        ("2 * i8 > i8 + 100", [4]),
        ("i8 % 2 == 0 and -(i8) < 1", [5]),
    ],
)
def test_arithmetic(expr, want):
    assert ids(expr) == want


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ("1 <= i64 < 11", [1, 6]),
        ("-10 < i64 <= 0", [2, 4]),
        ("11 > i64 >= 1", [1, 6]),
        ("'a' < s <= 'b'", [1, 5]),
        ("-1.0 <= f <= 1.1", [1, 3, 6]),
    ],
)
def test_ranges(expr, want):
    assert ids(expr) == want


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ("tags[0] == 'a'", [1, 5]),
        ("tags[1] != 'b'", [5]),  # an index past the end is false for every operator
        ("nums[0] > 2", [3, 4, 5, 6]),
        ("nums[1] < 100", [1, 4, 5, 6]),
        ("fl[0] == 1.1", [1]),
        ("nums[0] % 2 == 0", [4, 5]),
        ("tags[2] like '%😀'", [5]),
        ("tags[0] in ['b', 'c']", [3, 6]),
        ("array_contains(tags, 'b')", [1, 6]),
        ("ARRAY_CONTAINS(tags, 'b')", [1, 6]),
        ("json_contains(tags, 'c')", [3]),
        ("array_contains_all(tags, ['a', 'b'])", [1]),
        ("array_contains_any(tags, ['c', 'é'])", [3, 5]),
        ("array_contains_all(nums, [])", [1, 2, 3, 4, 5, 6]),
        ("array_contains_any(nums, [])", []),
        ("array_contains(nums, 4611686018427387904)", [5]),
        ("array_contains(fl, 1.1)", [1]),
        ("array_contains(fl, 2)", [1, 6]),
        ("array_length(tags) == 0", [4]),
        ("array_length(nums) >= 2", [1, 4, 5, 6]),
        ("array_length(fl) > 0", [1, 3, 4, 6]),
        ("array_length(nums) + 1 == 2", [3]),
        ("nums == [3, 3]", [6]),
        ("nums == []", [2]),
        ("nums != [7]", [1, 2, 4, 5, 6]),
        ("fl == [1.1, 2]", [1]),
        ("tags == ['a', 'é', '😀']", [5]),
        ("tags is null", [2]),
        ("tags is not null", [1, 3, 4, 5, 6]),
    ],
)
def test_arrays(expr, want):
    assert ids(expr) == want


def test_inputs_record_batch_chunked_and_empty():
    f = compile_filter("i64 > 0 and array_contains(nums, 3)", SCHEMA)
    table = to_table(ROWS, SCHEMA)
    want = [True, False, False, False, False, True]
    assert f.evaluate(table).tolist() == want
    assert f.evaluate(table.to_batches()[0]).tolist() == want
    chunked = pa.Table.from_batches(table.slice(0, 2).to_batches() + table.slice(2).to_batches())
    assert chunked.column("nums").num_chunks == 2
    assert f.evaluate(chunked).tolist() == want
    assert f.evaluate(table.slice(0, 0)).shape == (0,)
    assert evaluate("i64 > {x}", SCHEMA, table.slice(3), {"x": -1}).tolist() == [True, False, True]
    assert compile_filter("", SCHEMA).evaluate(table).all()


def test_narrow_and_wide_arrow_types_are_accepted():
    schema = Schema(
        [
            Field("id", DataType.INT64),
            Field("f", DataType.FLOAT),
            Field("s", DataType.VARCHAR),
            Field("a", DataType.ARRAY, element_type=DataType.FLOAT),
        ]
    )
    table = pa.table(
        {
            "id": pa.array([1, 2], pa.int16()),
            "f": pa.array([1.1, 2.0], pa.float64()),
            "s": pa.array(["x", "y"], pa.large_string()),
            "a": pa.array([[1.1], []], pa.large_list(pa.float64())),
        }
    )
    f = compile_filter("f == 1.1 and id == 1 and s == 'x' and a[0] == 1.1", schema)
    assert f.evaluate(table).tolist() == [True, False]


def test_data_errors_name_the_column():
    table = to_table(ROWS, SCHEMA)
    with pytest.raises(InvalidArgument, match="the data has no column 'i64'"):
        compile_filter("i64 > 0", SCHEMA).evaluate(table.drop_columns(["i64"]))
    bad = table.set_column(2, "i64", pa.array([str(r["i64"]) for r in ROWS]))
    with pytest.raises(
        InvalidArgument, match="column 'i64' has Arrow type string, but the schema says INT64"
    ):
        compile_filter("i64 > 0", SCHEMA).evaluate(bad)
    bad = table.set_column(7, "tags", pa.array([[1]] * len(ROWS), pa.list_(pa.int64())))
    with pytest.raises(InvalidArgument, match="a list of VARCHAR"):
        compile_filter("tags[0] == 'a'", SCHEMA).evaluate(bad)
    with pytest.raises(InvalidArgument, match="pyarrow Table or RecordBatch"):
        compile_filter("i64 > 0", SCHEMA).evaluate({"i64": [1]})  # type: ignore[arg-type]


def test_result_feeds_knn_allow_mask():
    import vecstore

    rng = np.random.default_rng(7)
    base = rng.standard_normal((len(ROWS), 8), dtype=np.float32)
    allow = compile_filter("i64 > 0", SCHEMA).evaluate(to_table(ROWS, SCHEMA))
    ids_, _ = vecstore.knn(base[:1], base, 3, allow=allow)
    assert set(ids_[0].tolist()) <= {0, 2, 5}
