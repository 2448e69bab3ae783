"""Hybrid-search builders with pymilvus's names: :class:`AnnSearchRequest`, :class:`RRFRanker`
and :class:`WeightedRanker`.

Constructors, attribute names (``_data``/``data``, ``_k``, ``_weights``, ``_norm_score``, ...)
and ``dict()`` follow ``pymilvus.client.abstract`` (pymilvus 2.6/3.0), so code written for
pymilvus runs unchanged. Unlike pymilvus, arguments are checked here, against Milvus 2.6's
server-side rules, and a bad one raises :class:`~vecstore.errors.InvalidArgument` at once:

- ``AnnSearchRequest(data, anns_field, param, limit, expr=None, expr_params=None, filter=None)``:
  ``limit`` in [1, 16384]; ``expr`` (or its alias ``filter``, not both) a string; ``param`` and
  ``expr_params`` dicts. ``data`` is checked against the vector field at search time.
- ``RRFRanker(k=60)``: ``k`` a number in (0, 16384).
- ``WeightedRanker(*weights, norm_score=True)``: one or more weights, each a number in [0, 1].

:func:`as_request` and :func:`as_ranker` also accept pymilvus's own objects (duck-typed on their
attributes and ``dict()``), and ``pymilvus.Function(..., FunctionType.RERANK, params={"reranker":
"rrf" | "weighted", ...})``; other rerank functions raise ``NotSupported``.
"""

from __future__ import annotations

import numbers
from typing import Any

from vecstore.errors import InvalidArgument

RANKER_TYPE_RRF = "rrf"
RANKER_TYPE_WEIGHTED = "weighted"
_MAX_TOPK = 16384  # Milvus's maxQueryResultWindow / topK limit
_RERANK_FUNCTION_TYPE = 3  # FunctionType.RERANK in pymilvus and vecstore.schema


def _is_number(x: object) -> bool:
    # bool is an int subclass; a weight of True is a mistake, not 1.
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


class AnnSearchRequest:
    """One vector search of a hybrid search: its query vectors, field, search params and limit,
    optionally filtered by ``expr`` with ``expr_params`` templates."""

    def __init__(self, data: Any, anns_field: str, param: dict | None, limit: int,
                 expr: str | None = None, expr_params: dict | None = None,
                 filter: str | None = None) -> None:  # noqa: A002 (pymilvus's name)
        if anns_field is not None and not isinstance(anns_field, str):
            raise InvalidArgument(f"AnnSearchRequest: anns_field must be a vector field's name, "
                                  f"got {type(anns_field).__name__}")
        if param is not None and not isinstance(param, dict):
            raise InvalidArgument(f"AnnSearchRequest: param must be a dict such as "
                                  f"{{'metric_type': 'L2', 'params': {{}}}}, got "
                                  f"{type(param).__name__}")
        if isinstance(limit, bool) or not isinstance(limit, numbers.Integral) or \
                not 1 <= limit <= _MAX_TOPK:
            raise InvalidArgument(f"AnnSearchRequest: limit must be an int in [1, {_MAX_TOPK}], "
                                  f"got {limit!r}")
        if expr is not None and filter is not None:
            raise InvalidArgument("AnnSearchRequest: pass either expr or filter, not both")
        resolved = filter if filter is not None else expr
        if resolved is not None and not isinstance(resolved, str):
            raise InvalidArgument(f"AnnSearchRequest: expr must be a filter string, got "
                                  f"{type(resolved).__name__}")
        if expr_params is not None and not isinstance(expr_params, dict):
            raise InvalidArgument(f"AnnSearchRequest: expr_params must be a dict of template "
                                  f"values, got {type(expr_params).__name__}")
        self._data = data
        self._anns_field = anns_field
        self._param = param
        self._limit = int(limit)
        self._expr = resolved
        self._expr_params = expr_params

    @property
    def data(self) -> Any:
        return self._data

    @property
    def anns_field(self) -> str:
        return self._anns_field

    @property
    def param(self) -> dict | None:
        return self._param

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def expr(self) -> str | None:
        return self._expr

    @property
    def filter(self) -> str | None:
        return self._expr

    @property
    def expr_params(self) -> dict | None:
        return self._expr_params

    def __str__(self) -> str:
        return str({"anns_field": self.anns_field, "param": self.param, "limit": self.limit,
                    "expr": self.expr})


class BaseRanker:
    """What pymilvus's rankers share: ``dict()`` gives ``{"strategy", "params"}``."""

    _strategy = ""

    def dict(self) -> dict[str, Any]:
        return {}

    def __str__(self) -> str:
        return str(self.dict())


class RRFRanker(BaseRanker):
    """Reciprocal rank fusion: a hit's score is the sum, over the requests that returned it, of
    ``1 / (k + rank)`` with ``rank`` its 1-based position in that request's results."""

    def __init__(self, k: float = 60) -> None:
        if not _is_number(k) or not 0 < k < _MAX_TOPK:
            raise InvalidArgument(f"RRFRanker: k must be a number in (0, {_MAX_TOPK}), got {k!r}")
        self._strategy = RANKER_TYPE_RRF
        self._k = k

    def dict(self) -> dict[str, Any]:
        return {"strategy": self._strategy, "params": {"k": self._k}}


class WeightedRanker(BaseRanker):
    """Weighted sum of each request's score (normalised into [0, 1] when ``norm_score``), one
    weight per request, in the order of the requests."""

    def __init__(self, *nums: float, norm_score: bool = True) -> None:
        if not nums:
            raise InvalidArgument("WeightedRanker needs one weight per AnnSearchRequest, got none")
        for w in nums:
            if not _is_number(w) or not 0 <= w <= 1:
                raise InvalidArgument(f"WeightedRanker: each weight must be a number in [0, 1], "
                                      f"got {w!r}")
        if not isinstance(norm_score, bool):
            raise InvalidArgument(f"WeightedRanker: norm_score must be True or False, got "
                                  f"{norm_score!r}")
        self._strategy = RANKER_TYPE_WEIGHTED
        self._weights = list(nums)
        self._norm_score = norm_score

    def dict(self) -> dict[str, Any]:
        return {"strategy": self._strategy,
                "params": {"weights": self._weights, "norm_score": self._norm_score}}


def as_request(obj: object) -> AnnSearchRequest:
    """``obj`` as a checked :class:`AnnSearchRequest`: ours, or any object with pymilvus's
    ``data``, ``anns_field``, ``param``, ``limit`` (and optional ``expr``, ``expr_params``)."""
    if isinstance(obj, AnnSearchRequest):
        return obj
    if not all(hasattr(obj, a) for a in ("data", "anns_field", "param", "limit")):
        raise InvalidArgument(f"hybrid_search: reqs must be AnnSearchRequest objects, got "
                              f"{type(obj).__name__}")
    return AnnSearchRequest(obj.data, obj.anns_field, obj.param, obj.limit,  # type: ignore
                            expr=getattr(obj, "expr", None),
                            expr_params=getattr(obj, "expr_params", None))


def as_ranker(obj: object) -> RRFRanker | WeightedRanker:
    """``obj`` as a checked ranker: ours, pymilvus's (through its ``dict()``), or a RERANK
    ``Function`` whose ``params["reranker"]`` is ``"rrf"`` or ``"weighted"``."""
    from vecstore.client.milvus_client import NotSupported

    if isinstance(obj, (RRFRanker, WeightedRanker)):
        return obj
    params = getattr(obj, "params", None)
    if isinstance(params, dict) and "reranker" in params:
        ftype = getattr(obj, "type", getattr(obj, "_type", _RERANK_FUNCTION_TYPE))
        if not isinstance(ftype, numbers.Integral) or int(ftype) != _RERANK_FUNCTION_TYPE:
            raise InvalidArgument("hybrid_search: a ranker Function must be of type "
                                  "FunctionType.RERANK")
        kind = str(params["reranker"]).lower()
        if kind == RANKER_TYPE_RRF:
            return RRFRanker(params.get("k", 60))
        if kind == RANKER_TYPE_WEIGHTED:
            weights = params.get("weights")
            if not isinstance(weights, (list, tuple)):
                raise InvalidArgument("hybrid_search: the weighted rerank Function needs "
                                      "params['weights'], a list with one weight per request")
            # Milvus's weighted function normalises only when asked (norm_score defaults false).
            return WeightedRanker(*weights, norm_score=params.get("norm_score", False))
        raise NotSupported(f"hybrid_search: reranker {params['reranker']!r} is not supported by "
                           "vecstore yet; use RRFRanker, WeightedRanker or the 'rrf' or "
                           "'weighted' rerank functions")
    to_dict = getattr(obj, "dict", None)
    spec = to_dict() if callable(to_dict) else None
    if isinstance(spec, dict) and isinstance(spec.get("params"), dict):
        p = spec["params"]
        if spec.get("strategy") == RANKER_TYPE_RRF:
            return RRFRanker(p.get("k", 60))
        if spec.get("strategy") == RANKER_TYPE_WEIGHTED:
            return WeightedRanker(*p.get("weights", []), norm_score=p.get("norm_score", True))
    raise InvalidArgument(f"hybrid_search: ranker must be RRFRanker(k) or WeightedRanker(*weights),"
                          f" got {type(obj).__name__}")


__all__ = ["AnnSearchRequest", "BaseRanker", "RRFRanker", "WeightedRanker", "as_ranker",
           "as_request"]
