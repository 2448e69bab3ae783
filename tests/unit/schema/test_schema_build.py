"""Building schemas the pymilvus way, their describe_collection-shaped dicts and round trips."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from tests.unit.schema.util import basic_schema, schema_error
from vecstore.schema import CollectionSchema, DataType, FieldSchema, Function, FunctionType


def test_create_schema_then_add_field_chains_and_applies_auto_id():
    s = CollectionSchema(auto_id=True, enable_dynamic_field=True, description="docs")
    same = s.add_field("id", DataType.INT64, is_primary=True).add_field(
        "vec", DataType.FLOAT_VECTOR, dim=8
    )
    assert same is s
    assert [f.name for f in s.fields] == ["id", "vec"]
    assert s.primary_field.name == "id" and s.primary_field.auto_id
    assert s.auto_id and s.enable_dynamic_field and s.description == "docs"
    assert len(s) == 2
    s.verify("docs")


def test_type_params_are_kept_as_pymilvus_keeps_them():
    s = CollectionSchema()
    s.add_field("id", DataType.INT64, is_primary=True, max_length=10, mmap_enabled=True)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim="8", dimension=9)
    s.add_field(
        "text",
        DataType.VARCHAR,
        max_length=100,
        enable_analyzer="true",
        analyzer_params={"type": "english"},
    )
    pk, vec, text = s.fields
    assert pk.params == {"mmap_enabled": True}  # max_length is not a type param of INT64
    assert vec.params == {"dim": "8"} and vec.kwargs == {"dimension": 9}
    assert text.params == {
        "max_length": 100,
        "enable_analyzer": True,
        "analyzer_params": '{"type":"english"}',
    }
    assert vec.dim == "8" and text.max_length == 100 and text.nonexistent is None
    assert vec.param_int("dim") == 8


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"is_primary": 1}, "Param is_primary must be bool type"),
        ({"is_primary": True, "auto_id": "yes"}, "Param auto_id must be bool type"),
        ({"auto_id": True}, "The auto_id can only be specified on the primary key field"),
        ({"is_partition_key": "x"}, "Param is_partition_key must be bool type"),
        ({"is_clustering_key": 0}, "Param is_clustering_key must be bool type"),
        ({"nullable": "no"}, "nullable must be boolean"),
        ({"default_value": None}, "Default value cannot be None for a field that is defined as"),
        ({"default_value": [1]}, "Default value unsupported data type: list"),
    ],
)
def test_field_construction_checks_of_pymilvus(kwargs, match):
    with schema_error(match):
        FieldSchema("f", DataType.INT64, **kwargs)


@pytest.mark.parametrize("dtype", [7, "FOO", 3.5, DataType.UNKNOWN, True])
def test_field_dtype_must_be_a_data_type(dtype):
    with schema_error("Field dtype must be of DataType"):
        FieldSchema("f", dtype)


def test_dtype_may_be_given_by_value_or_name():
    assert FieldSchema("f", 101, dim=4).dtype is DataType.FLOAT_VECTOR
    assert FieldSchema("f", "varchar", max_length=4).dtype is DataType.VARCHAR


def test_second_primary_key_is_refused_and_leaves_schema_unchanged():
    s = basic_schema()
    with schema_error(r"Expected only one primary key field, got \[id, id2, \.\.\.\]"):
        s.add_field("id2", DataType.INT64, is_primary=True)
    assert s.primary_field.name == "id" and len(s) == 3
    s.add_field("p", DataType.INT64, is_partition_key=True)
    with schema_error("Expected only one partition key field"):
        s.add_field("q", DataType.VARCHAR, max_length=3, is_partition_key=True)
    assert s.partition_key_field.name == "p"


def test_key_fields_named_in_create_schema():
    s = CollectionSchema(
        primary_field="pk", partition_key_field="tenant", clustering_key_field="ts"
    )
    s.add_field("pk", DataType.VARCHAR, max_length=16)
    s.add_field("tenant", DataType.INT64)
    s.add_field("ts", DataType.INT64)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    assert s.primary_field.name == "pk" and s.fields[0].is_primary
    assert s.partition_key_field.name == "tenant" and s.clustering_key_field.name == "ts"
    s.verify()


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: CollectionSchema([]), "Schema must have a primary key field"),
        (
            lambda: CollectionSchema([FieldSchema("x", DataType.FLOAT, is_primary=True)]),
            "Primary key type must be DataType.INT64 or DataType.VARCHAR",
        ),
        (
            lambda: CollectionSchema(
                [FieldSchema("id", DataType.INT64, is_primary=True)], partition_key_field="nope"
            ),
            r"the specified partition key field \{nope\} not exist",
        ),
        (
            lambda: CollectionSchema(
                [
                    FieldSchema("id", DataType.INT64, is_primary=True),
                    FieldSchema("p", DataType.FLOAT, is_partition_key=True),
                ]
            ),
            "Partition key field type must be DataType.INT64 or DataType.VARCHAR",
        ),
        (lambda: CollectionSchema("id"), "The fields of schema must be type list"),
        (lambda: CollectionSchema(["id"]), "The field of schema type must be FieldSchema"),
        (lambda: CollectionSchema(auto_id=1), "Param auto_id must be bool type"),
        (lambda: CollectionSchema(primary_field=3), "Param primary_field must be str type"),
    ],
)
def test_collection_schema_construction_checks(make, match):
    with schema_error(match):
        make()


def test_check_fields_false_skips_construction_checks():
    s = CollectionSchema([FieldSchema("v", DataType.FLOAT_VECTOR, dim=4)], check_fields=False)
    assert s.primary_field is None


def test_field_to_dict_has_describe_collection_shape():
    s = CollectionSchema(auto_id=True)
    s.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64, description="key")
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=8, mmap_enabled="false")
    s.add_field("tags", DataType.ARRAY, element_type=DataType.INT32, max_capacity=5, nullable=True)
    s.add_field("n", DataType.INT32, default_value=np.int32(7), is_clustering_key=True)
    s.add_field("tenant", DataType.VARCHAR, max_length=8, is_partition_key=True)
    s.add_field("text", DataType.VARCHAR, max_length=50, enable_analyzer=True)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_function(Function("bm25", FunctionType.BM25, "text", "sparse"))
    s.assign_field_ids()
    d = s.to_dict()
    assert d["auto_id"] is True and d["enable_dynamic_field"] is False and d["description"] == ""
    assert d["fields"] == [
        {
            "field_id": 100,
            "name": "id",
            "description": "key",
            "type": DataType.VARCHAR,
            "params": {"max_length": 64},
            "auto_id": True,
            "is_primary": True,
        },
        {
            "field_id": 101,
            "name": "vec",
            "description": "",
            "type": DataType.FLOAT_VECTOR,
            "params": {"mmap_enabled": False, "dim": 8},
        },
        {
            "field_id": 102,
            "name": "tags",
            "description": "",
            "type": DataType.ARRAY,
            "params": {"max_capacity": 5},
            "element_type": DataType.INT32,
            "nullable": True,
        },
        {
            "field_id": 103,
            "name": "n",
            "description": "",
            "type": DataType.INT32,
            "params": {},
            "default_value": 7,
            "is_clustering_key": True,
        },
        {
            "field_id": 104,
            "name": "tenant",
            "description": "",
            "type": DataType.VARCHAR,
            "params": {"max_length": 8},
            "is_partition_key": True,
        },
        {
            "field_id": 105,
            "name": "text",
            "description": "",
            "type": DataType.VARCHAR,
            "params": {"max_length": 50, "enable_analyzer": "true"},
        },
        {
            "field_id": 106,
            "name": "sparse",
            "description": "",
            "type": DataType.SPARSE_FLOAT_VECTOR,
            "params": {},
            "is_function_output": True,
        },
    ]
    assert d["functions"] == [
        {
            "name": "bm25",
            "id": 100,
            "description": "",
            "type": FunctionType.BM25,
            "params": {},
            "input_field_names": ["text"],
            "input_field_ids": [105],
            "output_field_names": ["sparse"],
            "output_field_ids": [106],
        },
    ]
    assert type(d["fields"][3]["default_value"]) is int  # plain Python, not numpy
    s.verify("docs")


def test_from_dict_round_trips(schema):
    schema.add_field("n", DataType.INT16, default_value=np.int16(-3))
    schema.add_field("meta", DataType.JSON, nullable=True)
    schema.enable_dynamic_field = True
    d = schema.to_dict()
    back = CollectionSchema.from_dict(d)
    assert back == schema and back.to_dict() == d
    back.verify()  # the INT16 default comes back as a numpy int, which Milvus's rules accept
    assert CollectionSchema.from_dict(back.to_dict()).to_dict() == d


def test_from_dict_reads_a_describe_collection_dict_and_pymilvus_orm_dicts():
    described = {
        "collection_name": "c",
        "auto_id": False,
        "num_shards": 1,
        "description": "",
        "fields": [
            {
                "field_id": 100,
                "name": "id",
                "description": "",
                "type": DataType.INT64,
                "params": {},
                "is_primary": True,
            },
            {
                "field_id": 101,
                "name": "vec",
                "description": "",
                "type": DataType.FLOAT_VECTOR,
                "params": {"dim": 4},
            },
        ],
        "functions": [],
        "aliases": [],
        "collection_id": 7,
        "consistency_level": 2,
        "properties": {},
        "num_partitions": 1,
        "enable_dynamic_field": True,
    }
    s = CollectionSchema.from_dict(described)
    assert [f.field_id for f in s.fields] == [100, 101] and s.enable_dynamic_field
    orm = {  # pymilvus CollectionSchema.to_dict(): no field ids, params only when set
        "auto_id": True,
        "description": "x",
        "fields": [
            {
                "name": "id",
                "description": "",
                "type": DataType.INT64,
                "is_primary": True,
                "auto_id": True,
            },
            {"name": "v", "description": "", "type": DataType.FLOAT_VECTOR, "params": {"dim": 2}},
            {"name": "t", "description": "", "type": DataType.VARCHAR, "params": {"max_length": 9}},
            {"name": "s", "description": "", "type": DataType.SPARSE_FLOAT_VECTOR},
        ],
        "enable_dynamic_field": False,
        "functions": [
            {
                "name": "f",
                "description": "",
                "type": FunctionType.BM25,
                "input_field_names": ["t"],
                "output_field_names": ["s"],
                "params": {},
            }
        ],
    }
    s2 = CollectionSchema.from_dict(orm)
    assert s2.auto_id and s2.description == "x" and s2.fields[3].is_function_output
    assert CollectionSchema.construct_from_dict(orm) == s2
    with schema_error("a schema dict needs a 'fields' list"):
        CollectionSchema.from_dict({"name": "x"})
    with schema_error("a field dict needs at least 'name' and 'type'"):
        FieldSchema.from_dict({"name": "x"})


def test_deepcopy_is_independent(schema):
    twin = copy.deepcopy(schema)
    twin.fields[1].params["dim"] = 99
    twin.add_field("x", DataType.BOOL)
    assert schema.fields[1].params["dim"] == 4 and len(schema) == 3
    assert schema.copy() == schema and schema.fields[0].copy() == schema.fields[0]


def test_assign_field_ids_keeps_existing_ids():
    s = basic_schema()
    s.fields[1].field_id = 150
    s.assign_field_ids()
    assert [f.field_id for f in s.fields] == [151, 150, 152]


def test_auto_id_setter_and_field_lookup(schema):
    schema.auto_id = True
    assert schema.primary_field.auto_id and schema.field("vec").dtype is DataType.FLOAT_VECTOR
    assert schema.field("nope") is None
    assert "'name': 'id'" in repr(schema) and schema != basic_schema()


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("f", FunctionType.BM25, ["a", "a"], ["b"]), "Duplicate input field names"),
        (("f", FunctionType.BM25, ["a"], ["b", "b"]), "Duplicate output field names"),
        (("f", FunctionType.BM25, ["a"], ["a"]), "Input and output field names must be different"),
        (("f", 42, ["a"], ["b"]), "Unknown function type"),
        ((1, FunctionType.BM25, ["a"], ["b"]), "The name of the function should be a string"),
        (("f", FunctionType.BM25, [1], ["b"]), "The type of function input and output must be str"),
    ],
)
def test_function_construction_checks(args, match):
    with schema_error(match):
        Function(*args)


def test_function_dict_round_trip_and_add_function_type_check(schema):
    fn = Function("emb", FunctionType.TEXTEMBEDDING, "title", "vec", params={"provider": "x"})
    assert Function.from_dict(fn.to_dict()) == fn
    assert fn.to_dict()["type"] is FunctionType.TEXTEMBEDDING
    with schema_error("The function of schema type must be Function"):
        schema.add_function("emb")
    schema.add_function(fn)
    assert schema.fields[1].is_function_output and schema.function_output_names == {"vec"}


def test_schemas_pickle(schema):
    import pickle

    schema.add_field("d", DataType.INT32, default_value=np.int32(4))
    back = pickle.loads(pickle.dumps(schema))
    assert back == schema and back.fields[1].dim == 4 and back.fields[3].default_value == 4
