"""Milvus's limits on schemas and data, with the source of each number.

These are Milvus 2.6's defaults (not Milvus Lite's, which enforces none of the size limits). The
names after ``proxy.``/``common.`` are Milvus's configuration keys (``milvus.yaml``); vecstore reads
them from here only, so a deployment that raises a limit changes one constant.

Sources: Milvus docs "Milvus Limits" (``about/limitations.md``), "String Field" (``string.md``),
"Array Field" (``array_data_type.md``); Milvus ``pkg/util/paramtable/component_param.go``
(``proxy.maxFieldNum``, ``proxy.maxVectorFieldNum``, ``proxy.maxDimension``,
``proxy.maxNameLength``,
``proxy.maxVarCharLength``, ``proxy.maxArrayCapacity``, ``common.JSONMaxLength``) and
``internal/proxy/util.go`` (``validateDimension``, ``validateMaxLengthPerRow``,
``getMaxCapacityPerRow``).
"""

from __future__ import annotations

MAX_NAME_LENGTH = 255  # proxy.maxNameLength: collection, field, partition, index names
MAX_FIELD_NUM = 64  # proxy.maxFieldNum: user fields per collection ($meta not counted)
MAX_VECTOR_FIELD_NUM = 4  # proxy.maxVectorFieldNum (configurable 1..10 in Milvus)
MIN_DIM = 2  # validateDimension: "should be in range 2 ~ 32768"
MAX_DIM = 32_768  # proxy.maxDimension
MAX_BINARY_DIM = MAX_DIM * 8  # binary vectors: dim counts bits, a multiple of 8
MAX_VARCHAR_LENGTH = 65_535  # proxy.maxVarCharLength, in bytes of UTF-8
MAX_ARRAY_CAPACITY = 4_096  # proxy.maxArrayCapacity
MAX_JSON_LENGTH = 64 << 10  # common.JSONMaxLength: bytes of one serialized JSON value
MAX_SPARSE_INDEX = (1 << 32) - 1  # sparse indices are uint32 and must be < 2**32 - 1
START_OF_USER_FIELD_ID = 100  # common.StartOfUserFieldID: first field id Milvus assigns

DYNAMIC_FIELD_NAME = "$meta"  # common.MetaFieldName
# System fields Milvus adds to every collection (common.RowIDFieldName, common.TimeStampFieldName).
RESERVED_FIELD_NAMES = frozenset({"RowID", "Timestamp", "__virtual_pk__"})
# Milvus pkg/common FieldNameKeywords: words of the filter grammar that cannot name a field.
# "null" is refused in any casing; the others in exactly these casings.
FIELD_NAME_KEYWORDS = frozenset(
    {
        "$meta",
        "like",
        "exists",
        "EXISTS",
        "and",
        "or",
        "not",
        "in",
        "json_contains",
        "JSON_CONTAINS",
        "json_contains_all",
        "JSON_CONTAINS_ALL",
        "json_contains_any",
        "JSON_CONTAINS_ANY",
        "array_contains",
        "ARRAY_CONTAINS",
        "array_contains_all",
        "ARRAY_CONTAINS_ALL",
        "array_contains_any",
        "ARRAY_CONTAINS_ANY",
        "array_length",
        "ARRAY_LENGTH",
        "true",
        "True",
        "TRUE",
        "false",
        "False",
        "FALSE",
        "text_match",
        "TEXT_MATCH",
        "phrase_match",
        "PHRASE_MATCH",
        "random_sample",
        "RANDOM_SAMPLE",
    }
)


def is_keyword(name: str) -> bool:
    return name in FIELD_NAME_KEYWORDS or name.lower() == "null"
