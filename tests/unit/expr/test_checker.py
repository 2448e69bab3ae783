"""Type checking against the schema, dynamic-field names, templates and constant folding."""

from __future__ import annotations

import numpy as np
import pytest

from vecstore.expr import DataType, ExprError, Field, Limits, Schema, compile_filter
from vecstore.expr import plan as p

SCHEMA = Schema(
    [
        Field("id", DataType.INT64),
        Field("age", DataType.INT32, nullable=True),
        Field("price", DataType.FLOAT),
        Field("score", DataType.DOUBLE),
        Field("name", DataType.VARCHAR),
        Field("flag", DataType.BOOL),
        Field("tags", DataType.ARRAY, element_type=DataType.VARCHAR),
        Field("nums", DataType.ARRAY, element_type=DataType.INT64),
        Field("meta", DataType.JSON),
        Field("vec", DataType.FLOAT_VECTOR),
    ],
    primary_key="id",
    enable_dynamic_field=True,
)
STATIC = Schema([f for f in SCHEMA.fields if f.name != "$meta"], primary_key="id")


def plan(expr, params=None, schema=SCHEMA):
    return compile_filter(expr, schema, params).plan


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        (
            "name > 3",
            "comparisons between field name (VARCHAR) and INT64 value 3 are not supported",
        ),
        ("age == 'x'", "comparisons between field age (INT32) and VARCHAR value 'x'"),
        ("age > 1.5", "cannot compare field age (INT32) with the float value 1.5"),
        ("flag == 1", "comparisons between field flag (BOOL) and INT64 value 1"),
        ("age == name", "comparisons between field age (INT32) and field name (VARCHAR)"),
        ("meta['a'] == age", "two column comparison with JSON type is not supported"),
        ("tags > ['a']", "ARRAY field tags cannot be compared with '>'"),
        ("tags == 'a'", "ARRAY field tags can only be compared with a list"),
        ("nums == ['a']", "comparisons between field nums (ARRAY<INT64>) and VARCHAR value 'a'"),
        ("age == [1]", "cannot be compared with a list"),
        ("vec > 1", "field vec is a vector field (FLOAT_VECTOR)"),
        ("name + 1 > 2", "'+' needs numbers, but field name is VARCHAR"),
        ("price % 2 == 0", "modulo can only apply on integer types, but field price is FLOAT"),
        ("age / 0 == 1", "division or modulus by zero"),
        ("age % (1 - 1) == 1", "division or modulus by zero"),
        ("5 < age < 1", "invalid range: lowerbound is greater than upperbound"),
        ("1 < age < 1", "invalid range"),
        ("1 < age + 1 < 5", "needs a field or JSON path in the middle"),
        ("age < price < 5", "range bounds must be constants"),
        ("1 < flag < 2", "invalid range operations on boolean expr"),
        ("age + 1 in [1]", "'in' can only be used on a single field"),
        ("age in 1", "must be a list such as [1, 2]"),
        ("age in [1, 'a']", "comparisons between field age (INT32) and VARCHAR value 'a'"),
        ("tags in [['a']]", "'in' does not apply to a whole ARRAY field"),
        ("age like 'a%'", "like applies to VARCHAR or JSON values"),
        ("name like 1", "the pattern of like must be a string"),
        ("name like 'abc\\\\'", "like pattern ends with an escape character"),
        ("exists age", "exists applies to a JSON key"),
        ("exists meta", "exists needs a key"),
        ("json_contains(age, 1)", "contains operations are only supported on json or array"),
        ("json_contains(tags[0], 'a')", "contains operations are only supported on json or array"),
        ("array_contains_all(tags, 'a')", "must be a list such as [1, 2]"),
        ("array_contains(nums, 1.5)", "cannot compare field nums (ARRAY<INT64>) with the float"),
        ("array_contains(tags, ['a'])", "holds VARCHAR elements, not lists"),
        ("array_length(age) == 1", "array_length applies to an ARRAY field or a JSON value"),
        ("array_length(tags) == 1.5", "with the float value 1.5"),
        ("age['a'] == 1", "field age of type INT32 cannot be accessed with []"),
        ("tags['a'] == 'x'", "ARRAY field tags can only be accessed with an integer index"),
        ("tags[0][1] == 'x'", "ARRAY field tags takes a single index"),
        ("tags[0] is null", "IS NULL applies to a field or a JSON key, not to the ARRAY element"),
        ("flag", "the filter must be a condition; flag is a BOOL value: compare it"),
        ("k", "the filter must be a condition; k is a JSON value"),
        ("age + 1", "the filter must be a condition"),
        ("(age > 1) == true", "expected a value, found the condition"),
        ("'a' == 1", "comparison operations cannot be applied to two incompatible operands"),
        ("[1] == [1]", "incompatible operands"),
        ("json_contains(meta, age)", "json_contains needs a constant element"),
    ],
)
def test_type_errors_name_the_field_and_the_mismatch(expr, message):
    with pytest.raises(ExprError) as info:
        plan(expr)
    assert message in info.value.detail
    assert info.value.position is not None


def test_unknown_field_without_dynamic_field_uses_milvus_wording():
    with pytest.raises(ExprError, match="field age2 not exist") as info:
        plan("age2 > 1", schema=STATIC)
    assert info.value.position == 0
    with pytest.raises(ExprError, match=r"field \$meta not exist"):
        plan('$meta["k"] == 1', schema=STATIC)


def test_dynamic_keys_resolve_to_the_meta_column():
    c = plan("k == 1").left
    assert (c.name, c.path, c.dtype) == ("$meta", ("k",), DataType.JSON)
    assert plan('k["x"][0] == 1').left.path == ("k", "x", "0")
    assert plan('$meta["k"] == 1').left.path == ("k",)
    # a schema field shadows a dynamic key of the same name
    assert plan("age == 1").left.name == "age"
    # meta[0] and meta["0"] are the same key, as in Milvus
    assert plan("meta[0] == 1").left.path == plan('meta["0"] == 1').left.path == ("0",)


def test_constants_are_cast_to_the_field_type():
    assert plan("price > 1").right.value == 1.0 and isinstance(plan("price > 1").right.value, float)
    assert plan("nums == [1, 2]").right.value == [1, 2]
    assert plan("score in [1, 2.5]").values == (1.0, 2.5)
    assert plan("array_contains_any(tags, ['a'])").values == ("a",)
    # a constant on the left is moved right and the operator flipped
    cmp = plan("3 < age")
    assert (cmp.op, cmp.left.name, cmp.right.value) == (">", "age", 3)


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("1 + 2 * 3 == 7", True),
        ("-7 / 2 == -3", True),  # integer division truncates toward zero (Go, C++)
        ("-7 % 3 == -1", True),  # the remainder takes the dividend's sign
        ("7 % -3 == 1", True),
        ("9223372036854775807 + 1 < 0", True),  # int64 wraps
        ("2 ** -1 == 0.5", True),
        ("2 ** 3 ** 2 == 64", True),  # left-associative, as Milvus's grammar
        ("-2 ** 2 == -4", True),
        ("7 / 2.0 == 3.5", True),
        ("'b' > 'a'", True),
        ("true == false", False),
        ("not (1 > 2)", True),
        ("true", True),
        ("", True),
    ],
)
def test_constant_folding(expr, value):
    assert plan(expr) == p.BoolConst(value)


def test_ranges_become_two_comparisons_on_one_column():
    node = plan("1 <= age < 5")
    assert isinstance(node, p.And)
    assert [(c.op, c.right.value) for c in node.items] == [(">=", 1), ("<", 5)]
    node = plan("5 > age >= 1")
    assert [(c.op, c.right.value) for c in node.items] == [(">=", 1), ("<", 5)]
    assert plan("1 <= age <= 1") is not None  # an inclusive single point is fine


def test_is_null_on_a_json_key_is_not_exists():
    assert plan('meta["a"] is null') == p.Not(p.Exists(plan('meta["a"] is not null').column))
    assert isinstance(plan("meta is null"), p.IsNull)


def test_templates_substitute_typed_values():
    node = plan(
        "age > {a} and name in {names} and price < {p} and flag == {f}",
        {"a": 18, "names": ["x", "y"], "p": 2, "f": np.bool_(True)},
    )
    assert [i.right.value if isinstance(i, p.Cmp) else i.values for i in node.items] == [
        18,
        ("x", "y"),
        2.0,
        True,
    ]
    assert plan("age in [{a}, 3]", {"a": np.int32(7)}).values == (7, 3)
    assert plan("age in {xs}", {"xs": np.arange(3)}).values == (0, 1, 2)
    assert plan("json_contains_all(meta['t'], {v})", {"v": [1, [2, "x"]]}).values == (1, [2, "x"])
    assert plan("name like {pat}", {"pat": "a%"}).pattern == "a%"
    assert plan("1 < age < {hi}", {"hi": 5}).items[1].right.value == 5


def test_template_values_are_never_spliced_into_the_text():
    node = plan("name == {v}", {"v": '" or 1 == 1 or "'})
    assert node.right.value == '" or 1 == 1 or "'
    with pytest.raises(ExprError, match="incompatible operands: 'age' > 1"):
        plan("{f} > 1", {"f": "age"})  # a parameter is a value, never a field name


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "template variable name {a} is not found"),
        ({"a": None}, "unsupported value type NoneType"),
        ({"a": {"x": 1}}, "unsupported value type dict"),
        ({"a": 1 << 63}, "out of range for INT64"),
        ({"a": "x"}, "comparisons between field age (INT32) and VARCHAR value 'x'"),
        ({"a": 1.5}, "with the float value 1.5"),
    ],
)
def test_template_errors(params, message):
    with pytest.raises(ExprError) as info:
        plan("age > {a}", params)
    assert message in str(info.value)


def test_template_size_limits_apply():
    limits = Limits(max_list=3, max_string=4)
    with pytest.raises(ExprError, match="list of 4 values exceeds the limit of 3"):
        compile_filter("age in {xs}", SCHEMA, {"xs": [1, 2, 3, 4]}, limits=limits)
    with pytest.raises(ExprError, match="string of 5 characters exceeds the limit of 4"):
        compile_filter("name == {s}", SCHEMA, {"s": "abcde"}, limits=limits)
    with pytest.raises(ExprError, match="filter_params must be a dict"):
        compile_filter("age > 1", SCHEMA, [1])  # type: ignore[arg-type]


def test_filter_reports_the_columns_it_reads():
    f = compile_filter("age > 1 and (k == 2 or tags[0] == 'a') and meta['x'] is null", SCHEMA)
    assert f.columns == {"age", "$meta", "tags", "meta"}
    assert compile_filter("", SCHEMA).columns == frozenset()
    assert "age > 1" in repr(compile_filter("age > 1", SCHEMA))


def test_schema_from_dict_and_validation():
    s = Schema.from_dict(
        {
            "fields": [
                {"name": "id", "type": "Int64", "is_primary": True},
                {"name": "tags", "type": "array", "element_type": "varchar", "nullable": True},
                {"name": "m", "datatype": DataType.JSON},
            ],
            "enable_dynamic_field": True,
        }
    )
    assert s.primary_key == "id" and s.get("tags").nullable and s.get("$meta") is not None
    assert compile_filter(
        "k == 1 and array_contains(tags, 'x')",
        {
            "fields": [{"name": "tags", "type": "ARRAY", "element_type": "VARCHAR"}],
            "enable_dynamic_field": True,
        },
    ).columns == {"tags", "$meta"}
    for bad, message in [
        (lambda: Field("a b", DataType.INT64), "invalid field name"),
        (lambda: Field("a", DataType.ARRAY), "needs element_type"),
        (lambda: Field("a", DataType.INT64, element_type=DataType.INT8), "only for ARRAY"),
        (lambda: Field("a", "INT128"), "unknown data type"),
        (lambda: Schema([Field("a", DataType.INT8), Field("a", DataType.INT8)]), "duplicate"),
        (lambda: Schema([Field("a", DataType.INT8)], primary_key="b"), "primary key 'b'"),
        (lambda: Schema([Field("$meta", DataType.INT8)]), "must be JSON"),
        (lambda: Schema.from_dict({"fields": [{"type": "INT8"}]}), "needs a 'name'"),
    ]:
        with pytest.raises(ExprError, match=message):
            bad()
