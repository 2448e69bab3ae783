"""Vector columns: every dense kind, dims, NaN/infinity, bfloat16 rounding, binary and sparse."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tests.unit.schema.util import data_error
from vecstore.schema import CollectionSchema, DataType
from vecstore.schema.vectors import f32_to_bf16_bits

DIM = 16


def vec_schema(dtype: DataType, dim: int | None = DIM, **kw) -> CollectionSchema:
    s = CollectionSchema()
    s.add_field("id", DataType.INT64, is_primary=True)
    if dtype == DataType.SPARSE_FLOAT_VECTOR:
        s.add_field("v", dtype, **kw)
    else:
        s.add_field("v", dtype, dim=dim, **kw)
    s.verify()
    return s


def run(s: CollectionSchema, v, n: int | None = None) -> pa.Array:
    n = len(v) if n is None else n
    return s.validate_columns({"id": np.arange(n), "v": v}).column("v").combine_chunks()


def dense(arr: pa.Array, width: int) -> np.ndarray:
    return arr.values.to_numpy().reshape(-1, width)


def test_float_vectors_from_every_input_form(rng):
    s = vec_schema(DataType.FLOAT_VECTOR)
    x = rng.standard_normal((5, DIM)).astype(np.float32)
    forms = [
        x,
        x.astype(np.float64),
        list(x),
        [r.tolist() for r in x],
        np.array(list(x), object),
        pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), DIM),
        pa.array([r.tolist() for r in x], pa.list_(pa.float32())),
        [r.tobytes() for r in x],
    ]
    for form in forms:
        out = run(s, form)
        assert out.type == pa.list_(pa.float32(), DIM)
        np.testing.assert_array_equal(dense(out, DIM), x)
    ints = np.arange(5 * DIM).reshape(5, DIM)
    np.testing.assert_array_equal(dense(run(s, ints), DIM), ints.astype(np.float32))


def test_float_vector_dim_mismatch_names_the_row(rng):
    s = vec_schema(DataType.FLOAT_VECTOR)
    rows = [rng.standard_normal(DIM).tolist() for _ in range(4)]
    rows[2] = rows[2][:-1]
    msg = rf"the dim \({DIM - 1}\) of field data\(v\) is not equal to schema dim \({DIM}\)"
    with data_error(msg, field="v", row=2):
        run(s, rows)
    with data_error(msg, field="v", row=0):
        run(s, np.zeros((4, DIM - 1), np.float32))
    with data_error(msg, field="v", row=0):
        run(s, pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(4 * (DIM - 1))), DIM - 1))
    with data_error(msg, field="v", row=2):
        run(s, pa.array(rows))
    with data_error("a vector column must be 2-D", field="v", row=0):
        run(s, np.zeros(DIM, np.float32), n=DIM)
    with data_error(
        "a vector must be a list or 1-D array of 16 numbers, got float", field="v", row=0
    ):
        run(s, [0.5, 0.25])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_infinity_are_refused(rng, bad):
    for dtype in (DataType.FLOAT_VECTOR, DataType.FLOAT16_VECTOR, DataType.BFLOAT16_VECTOR):
        s = vec_schema(dtype)
        x = rng.standard_normal((6, DIM)).astype(np.float32)
        x[4, 7] = bad
        with data_error("is not a number or infinity", field="v", row=4):
            run(s, x)
        with data_error("is not a number or infinity", field="v", row=4):
            run(s, [r.tolist() for r in x])


def test_overflow_to_infinity_is_refused():
    s = vec_schema(DataType.FLOAT_VECTOR)
    x = np.zeros((3, DIM))
    x[1, 0] = 1e39
    with data_error(
        r"value '1e\+39' is not a number or infinity \(float32 overflows\)", field="v", row=1
    ):
        run(s, x)
    s16 = vec_schema(DataType.FLOAT16_VECTOR)
    x[1, 0] = 70000.0
    with data_error(r"\(float16 overflows\)", field="v", row=1):
        run(s16, x)
    sb = vec_schema(DataType.BFLOAT16_VECTOR)
    x[1, 0] = 3.4e38
    with data_error("overflows bfloat16", field="v", row=1):
        run(sb, x)


def test_float16_vectors(rng):
    s = vec_schema(DataType.FLOAT16_VECTOR)
    x = rng.standard_normal((4, DIM)).astype(np.float16)
    out = run(s, x)
    assert out.type == pa.list_(pa.float16(), DIM)
    np.testing.assert_array_equal(dense(out, DIM), x)
    np.testing.assert_array_equal(dense(run(s, [r.tobytes() for r in x]), DIM), x)
    np.testing.assert_array_equal(dense(run(s, x.astype(np.float32)), DIM), x)
    assert run(s, out).equals(out)


def test_bfloat16_rounding_matches_ml_dtypes(rng):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = rng.standard_normal(4096).astype(np.float32) * np.float32(1e3)
    # values exactly halfway between two bfloat16s, to check ties round to even
    ties = (np.arange(1, 65, dtype=np.uint32) << 16 | 0x8000).view(np.float32)
    x = np.concatenate([x, ties, [0.0, -0.0, 1e-40, -1e-40]]).astype(np.float32)
    want = x.astype(ml_dtypes.bfloat16).view(np.uint16)
    np.testing.assert_array_equal(f32_to_bf16_bits(x), want)


def test_bfloat16_vectors(rng):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    s = vec_schema(DataType.BFLOAT16_VECTOR)
    x = rng.standard_normal((4, DIM)).astype(ml_dtypes.bfloat16)
    bits = x.view(np.uint16)
    out = run(s, x)
    assert out.type == pa.list_(pa.uint16(), DIM)
    np.testing.assert_array_equal(dense(out, DIM), bits)
    np.testing.assert_array_equal(dense(run(s, x.astype(np.float32)), DIM), bits)
    np.testing.assert_array_equal(dense(run(s, [r.tobytes() for r in x]), DIM), bits)
    np.testing.assert_array_equal(dense(run(s, list(x)), DIM), bits)
    assert run(s, out).equals(out)


def test_int8_vectors(rng):
    s = vec_schema(DataType.INT8_VECTOR)
    x = rng.integers(-128, 128, (4, DIM)).astype(np.int8)
    out = run(s, x)
    assert out.type == pa.list_(pa.int8(), DIM)
    np.testing.assert_array_equal(dense(out, DIM), x)
    np.testing.assert_array_equal(dense(run(s, x.astype(np.int64).tolist()), DIM), x)
    wide = x.astype(np.int32)
    wide[3, 0] = 128
    with data_error(r"int8 vector values must be in \[-128, 127\]", field="v", row=3):
        run(s, wide)
    with data_error("int8 vector values must be integers", field="v", row=0):
        run(s, x.astype(np.float32))


def test_binary_vectors(rng):
    s = vec_schema(DataType.BINARY_VECTOR, dim=64)
    bits = rng.integers(0, 2, (5, 64)).astype(bool)
    packed = np.packbits(bits, axis=-1)
    out = run(s, packed)
    assert out.type == pa.list_(pa.uint8(), 8)
    np.testing.assert_array_equal(dense(out, 8), packed)
    np.testing.assert_array_equal(dense(run(s, [r.tobytes() for r in packed]), 8), packed)
    np.testing.assert_array_equal(dense(run(s, pa.array([r.tobytes() for r in packed])), 8), packed)
    assert run(s, out).equals(out)
    short = [r.tobytes() for r in packed]
    short[1] = short[1][:7]
    with data_error(
        r"the dim \(56\) of field data\(v\) is not equal to schema dim \(64\)", field="v", row=1
    ):
        run(s, short)
    with data_error(
        r"BINARY_VECTOR values must be numbers, got bools; pack bits with "
        r"np.packbits\(bits, axis=-1\)",
        field="v",
        row=0,
    ):
        run(s, bits)
    with data_error("binary vector bytes must be in", field="v", row=0):
        run(s, packed.astype(np.int16) + 256)


def test_nullable_vectors_keep_validity_and_zero_children(rng):
    s = vec_schema(DataType.FLOAT_VECTOR, nullable=True)
    x = rng.standard_normal((4, DIM)).astype(np.float32)
    rows = [x[0], None, x[2], None]
    out = run(s, rows)
    assert out.null_count == 2 and out.to_pylist()[1] is None
    child = out.values.to_numpy().reshape(4, DIM)
    np.testing.assert_array_equal(child[[0, 2]], x[[0, 2]])
    assert not child[[1, 3]].any()
    assert run(s, out).equals(out)
    strict = vec_schema(DataType.FLOAT_VECTOR)
    with data_error("None is not a valid value", field="v", row=1):
        run(strict, rows)
    rows[2] = [np.nan] * DIM
    with data_error("is not a number or infinity", field="v", row=2):  # row of the batch
        run(s, rows)


def test_vector_rows_of_the_wrong_kind(rng):
    s = vec_schema(DataType.FLOAT_VECTOR)
    with data_error("a vector must be a list or 1-D array", field="v", row=1):
        run(s, [[0.0] * DIM, {"a": 1}])
    with data_error("vector elements must be numbers", field="v", row=1):
        run(s, [[0.0] * DIM, ["x"] * DIM])
    with data_error("FLOAT_VECTOR values must be numbers, got bools", field="v", row=0):
        run(s, np.zeros((2, DIM), bool))
    with data_error("FLOAT_VECTOR values must be real numbers, got dtype <U", field="v", row=0):
        run(s, np.full((2, DIM), "x"))
    with data_error("vector elements cannot be None", field="v", row=1):
        run(s, pa.array([[0.0] * DIM, [None] * DIM], pa.list_(pa.float32(), DIM)))


def test_sparse_vectors():
    s = vec_schema(DataType.SPARSE_FLOAT_VECTOR)
    rows = [{7: 0.5, 2: 0.25}, [(3, 1.0), (1, 2.0)], {}, {4294967294: np.float32(1.5)}]
    out = run(s, rows)
    assert out.type == pa.map_(pa.uint32(), pa.float32())
    assert out.to_pylist() == [[(2, 0.25), (7, 0.5)], [(1, 2.0), (3, 1.0)], [], [(4294967294, 1.5)]]
    assert run(s, out).equals(out)
    for bad, row, match in (
        ({2**32 - 1: 1.0}, 1, "invalid index in sparse float vector: must be less than 2\\^32-1"),
        ({-1: 1.0}, 1, "sparse vector index must be positive and less than 2\\^32-1"),
        ([(5, 1.0), (5, 2.0)], 1, "unsorted or same indices in sparse float vector"),
        ({5: float("nan")}, 1, "value 'nan' is not a number or infinity"),
        ({5: 1e39}, 1, "is not a number or infinity"),
        ({"5": 1.0}, 1, "sparse vector indices must be integers"),
        ([1.0, 2.0], 1, "a sparse vector is a dict"),
    ):
        with data_error(match, field="v", row=row):
            run(s, [{1: 1.0}, bad])


def test_sparse_from_scipy():
    sp = pytest.importorskip("scipy.sparse")
    s = vec_schema(DataType.SPARSE_FLOAT_VECTOR)
    m = sp.csr_matrix(np.array([[0, 1.5, 0], [2.0, 0, 3.0]]))
    assert run(s, m).to_pylist() == [[(1, 1.5)], [(0, 2.0), (2, 3.0)]]
    assert run(s, [m[0], m[1]]).to_pylist() == [[(1, 1.5)], [(0, 2.0), (2, 3.0)]]


def test_large_finite_values_are_accepted():
    s = vec_schema(DataType.FLOAT_VECTOR)
    x = np.full((3, DIM), 3e38, np.float32)  # each row sums past float32's maximum
    np.testing.assert_array_equal(dense(run(s, x), DIM), x)
    s16 = vec_schema(DataType.FLOAT16_VECTOR)
    y = np.full((3, DIM), 60000, np.float16)
    np.testing.assert_array_equal(dense(run(s16, y), DIM), y)
