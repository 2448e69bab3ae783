"""Index specifications: the index types vecstore builds, their Milvus parameters, and the checks
``create_index`` runs before anything is recorded.

An :class:`IndexSpec` is what a vector field's index declaration means to the engines: the
concrete type (AUTOINDEX resolved), the metric and the build parameters with Milvus's defaults
filled in. Its :attr:`~IndexSpec.fingerprint` identifies a build: a per-segment index file built
for one fingerprint serves exactly the declarations with the same fingerprint.

Supported, by vector kind (anything else is refused, naming what is supported):

- FLOAT_VECTOR: FLAT, HNSW (``M``, ``efConstruction``), HNSW_SQ (plus ``sq_type``, ``refine``,
  ``refine_type``, ``refine_k``), IVF_FLAT and IVF_SQ8 (``nlist``), IVF_PQ (``nlist``, ``m``,
  ``nbits``), AUTOINDEX (HNSW, M=16, efConstruction=200);
- FLOAT16/BFLOAT16/INT8_VECTOR: FLAT and AUTOINDEX (exact search);
- BINARY_VECTOR: BIN_FLAT, BIN_IVF_FLAT (``nlist``), AUTOINDEX (BIN_FLAT).

FLAT and BIN_FLAT need no build: exact search is the index. Parameter values may be ints or int
strings, as Milvus accepts; ranges are Milvus's (knowhere's).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vecstore.errors import InvalidArgument, NotSupported

FLOAT_TYPES = ("FLAT", "HNSW", "HNSW_SQ", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "AUTOINDEX")
EXACT_ONLY_TYPES = ("FLAT", "AUTOINDEX")
BINARY_TYPES = ("BIN_FLAT", "BIN_IVF_FLAT", "AUTOINDEX")
SCALAR_TYPES = ("INVERTED", "STL_SORT", "BITMAP", "TRIE")
EXACT = ("FLAT", "BIN_FLAT")  # no build: the exact kernels are the index
SQ_TYPES = ("SQ8", "FP16", "BF16")
REFINE_TYPES = ("FP32",)

# Parameters of every type: (name, low, high, default); None means not defaulted.
_INT = {
    "HNSW": [("M", 2, 2048, 30), ("efConstruction", 1, 1 << 31, 360)],
    "IVF_FLAT": [("nlist", 1, 65536, 128)],
    "IVF_SQ8": [("nlist", 1, 65536, 128)],
    "IVF_PQ": [("nlist", 1, 65536, 128), ("m", 1, 65536, None), ("nbits", 1, 64, 8)],
    "BIN_IVF_FLAT": [("nlist", 1, 65536, 128)],
}
_INT["HNSW_SQ"] = _INT["HNSW"]
_OTHER = {"HNSW_SQ": ("sq_type", "refine", "refine_type", "refine_k")}
# Keys a client may add that do not change the index (segments are always mapped): accepted,
# recorded in the declaration, left out of the spec.
_NEUTRAL = frozenset({"mmap.enabled"})
AUTOINDEX_FLOAT = ("HNSW", {"M": 16, "efConstruction": 200})


@dataclass(frozen=True)
class IndexSpec:
    index_type: str  # concrete: never AUTOINDEX
    metric: str
    params: tuple[tuple[str, Any], ...]  # sorted (name, value) with defaults filled in

    @property
    def exact(self) -> bool:
        return self.index_type in EXACT

    def param(self, name: str) -> Any:
        return dict(self.params)[name]

    @property
    def fingerprint(self) -> str:
        return json.dumps({"type": self.index_type, "metric": self.metric,
                           "params": dict(self.params)}, sort_keys=True)

    @classmethod
    def from_fingerprint(cls, text: str) -> IndexSpec:
        d = json.loads(text)
        return cls(d["type"], d["metric"], tuple(sorted(d["params"].items())))


def default_metric(kind: str) -> str:
    """Milvus's metric when an index declares none: COSINE for float vectors, HAMMING for
    binary ones (the search default too)."""
    return "HAMMING" if kind == "binary" else "COSINE"


def declared_specs(vectors: Mapping[str, Any], properties: Mapping[str, str]
                   ) -> dict[str, IndexSpec]:
    """{vector field: its declared index as a build spec} from a collection's properties
    (``index.<f>``, ``metric_type.<f>``, ``index_params.<f>``); ``vectors`` maps each vector field
    to its spec (``.kind``, ``.dim``: proxy.convert.Layout's)."""
    out = {}
    for name, vec in vectors.items():
        kind = properties.get(f"index.{name}")
        if kind is None:
            continue
        metric = properties.get(f"metric_type.{name}") or default_metric(vec.kind)
        params = json.loads(properties.get(f"index_params.{name}", "{}"))
        out[name] = resolve(vec.kind, vec.dim, name, kind, metric, params)
    return out


def supported_types(kind: str) -> tuple[str, ...]:
    """Index types for a vector kind: "float32", "binary", or the other float kinds."""
    if kind == "float32":
        return FLOAT_TYPES
    if kind == "binary":
        return BINARY_TYPES
    return EXACT_ONLY_TYPES


def _int(value: Any, name: str, low: int, high: int, index_type: str) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgument(f"{index_type} parameter {name} must be an integer in "
                              f"[{low}, {high}], got {value!r}")
    return value


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise InvalidArgument(f"HNSW_SQ parameter {name} must be true or false, got {value!r}")
    return value


def resolve(kind: str, dim: int, field: str, index_type: str, metric: str,
            params: dict[str, Any]) -> IndexSpec:
    """The checked spec of ``index_type`` on a ``kind`` vector field of dimension ``dim``.

    ``metric`` is already checked for the kind. Raises NotSupported for a type or parameter
    vecstore does not build and InvalidArgument for a value out of Milvus's range.
    """
    allowed = supported_types(kind)
    if index_type not in allowed:
        raise NotSupported(
            f"index type {index_type} is not supported by vecstore on {kind} vector field "
            f"{field}; supported: {', '.join(allowed)}")
    concrete, given = index_type, dict(params)
    if index_type == "AUTOINDEX":
        if kind == "float32":
            concrete = AUTOINDEX_FLOAT[0]
            given = {**AUTOINDEX_FLOAT[1], **{k: v for k, v in given.items()
                                              if k in ("M", "efConstruction")}}
        else:
            concrete, given = ("BIN_FLAT" if kind == "binary" else "FLAT"), {}
    ints = _INT.get(concrete, [])
    known = {n for n, *_ in ints} | set(_OTHER.get(concrete, ())) | _NEUTRAL
    unknown = sorted(k for k in given if k not in known)
    if unknown:
        takes = ", ".join(sorted(known - _NEUTRAL)) or "no parameters"
        raise NotSupported(f"{concrete} index parameter(s) {unknown} are not supported by "
                                f"vecstore; {concrete} takes {takes}")
    out: dict[str, Any] = {}
    for name, low, high, default in ints:
        if name in given:
            out[name] = _int(given[name], name, low, high, concrete)
        elif default is not None:
            out[name] = default
    if concrete == "IVF_PQ":
        if "m" not in out:
            raise InvalidArgument(f"IVF_PQ needs parameter m (sub-quantizers; a divisor of the "
                                  f"dimension {dim})")
        if dim % out["m"]:
            raise InvalidArgument(f"IVF_PQ parameter m ({out['m']}) must divide the dimension "
                                  f"({dim})")
        if out["nbits"] != 8:
            raise NotSupported(f"IVF_PQ with nbits={out['nbits']} is not supported by "
                                    "vecstore; supported: nbits=8 (256 codewords per sub-space)")
    if concrete == "HNSW_SQ":
        sq = str(given.get("sq_type", "SQ8")).upper()
        if sq not in SQ_TYPES:
            raise NotSupported(f"HNSW_SQ sq_type {sq} is not supported by vecstore; "
                                    f"supported: {', '.join(SQ_TYPES)}")
        out["sq_type"] = sq
        out["refine"] = _bool(given.get("refine", False), "refine")
        rt = str(given.get("refine_type", "FP32")).upper()
        if rt not in REFINE_TYPES:
            raise NotSupported(f"HNSW_SQ refine_type {rt} is not supported by vecstore; "
                                    "supported: FP32 (exact re-ranking on the stored vectors)")
        out["refine_type"] = rt
        rk = given.get("refine_k", 1)
        if isinstance(rk, str):
            try:
                rk = float(rk)
            except ValueError:
                pass
        if isinstance(rk, bool) or not isinstance(rk, (int, float)) or not 1 <= rk <= 1024:
            raise InvalidArgument(f"HNSW_SQ parameter refine_k must be a number in [1, 1024], "
                                  f"got {rk!r}")
        out["refine_k"] = float(rk)
    return IndexSpec(concrete, metric, tuple(sorted(out.items())))
