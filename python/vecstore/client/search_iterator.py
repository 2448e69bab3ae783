"""``MilvusClient.search_iterator``: pymilvus's ``SearchIterator``, embedded.

Pages through the hits of one query vector from the closest on, ``batch_size`` hits per
:meth:`SearchIterator.next` call, past search's 16,384-hit window, the way pymilvus's iterator (v1)
pages a Milvus server: each page after the first is a range search whose near bound
(``range_filter``, inclusive) is the last page's last distance, with the hits already returned *at
that distance* excluded by primary key, so ties at a page boundary are neither lost nor repeated.
The far bound is the user's ``radius`` if given, else the far end of float32. Every search is
exact and runs on the single query (a batch of one), so a hit's distance is the same on every
page.

``next()`` returns a list of hits (``{"id", "distance", "entity"}``, as ``search`` shapes them), and
an empty list once the hits or ``limit`` (-1: none) are exhausted, and after :meth:`close`. The
arguments are checked, and the first page fetched, when the iterator is created, so a bad filter
or parameter raises there. Each page reads the latest snapshot (pymilvus pins the first search's):
an entity written during the iteration appears if it ranks after the cursor.

Milvus rejects several query vectors, ``offset``, grouping and ``ids=`` for iterators; so does
this one.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from vecstore.client.common import iterator_filter
from vecstore.errors import InvalidArgument
from vecstore.proxy.convert import query_vectors
from vecstore.proxy.search_params import HIGHER_IS_CLOSER

MAX_BATCH_SIZE = 16384  # pymilvus's MAX_BATCH_SIZE
UNLIMITED = -1
_EXCLUDE_PARAM = "__vecstore_iterator_exclude"  # template parameter no user filter uses
_FAR = float(np.finfo(np.float32).max)


class SearchIterator:
    """Pages of one query's hits, closest first; see the module docstring."""

    def __init__(self, proxy: Any, db: str, collection_name: str, data: Any,
                 batch_size: int = 1000, filter: str | None = None,  # noqa: A002
                 limit: int | None = UNLIMITED, output_fields: list[str] | None = None,
                 search_params: dict | None = None, partition_names: list[str] | None = None,
                 anns_field: str | None = None, round_decimal: int = -1,
                 filter_params: dict | None = None, consistency_level: str | None = None
                 ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or \
                not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise InvalidArgument(f"search_iterator: batch_size must be an int in [1, "
                                  f"{MAX_BATCH_SIZE}], got {batch_size!r}")
        if limit is None:
            limit = UNLIMITED
        if isinstance(limit, bool) or not isinstance(limit, numbers.Integral) or limit < -1:
            raise InvalidArgument(f"search_iterator: limit must be -1 (no limit) or an int >= 0, "
                                  f"got {limit!r}")
        filter, filter_params = iterator_filter(  # noqa: A001
            "search_iterator", filter, filter_params, _EXCLUDE_PARAM)
        sp = dict(search_params or {})
        if not isinstance(sp.get("params", {}), dict):
            raise InvalidArgument("search_params['params'] must be a dict")
        inner = dict(sp.pop("params", None) or {})
        for key in ("offset", "group_by_field", "group_size", "strict_group_size"):
            if sp.get(key) or inner.get(key):
                raise InvalidArgument(f"search_iterator does not support {key}; use search")
        self._proxy, self._db, self._name = proxy, db, collection_name
        meta, _, layout = proxy.collection(db, collection_name)
        field = anns_field or (next(iter(layout.vectors)) if len(layout.vectors) == 1 else None)
        if field is None or field not in layout.vectors:
            raise InvalidArgument("search_iterator: anns_field must name a vector field"
                                  if field else "multiple anns_fields exist, please specify a "
                                  "anns_field")
        queries = query_vectors(data, layout.vectors[field])
        if queries.shape[0] != 1:
            raise InvalidArgument(
                "search_iterator does not support processing multiple vectors simultaneously: "
                f"pass exactly one query vector (got {queries.shape[0]})")
        spec = layout.vectors[field]
        metric = str(sp.get("metric_type") or inner.get("metric_type") or
                     meta.properties.get(f"metric_type.{field}") or
                     ("HAMMING" if spec.kind == "binary" else "COSINE")).upper()
        self._higher = metric in HIGHER_IS_CLOSER
        radius = inner.pop("radius", sp.pop("radius", None))
        self._first_rf = inner.pop("range_filter", sp.pop("range_filter", None))
        self._radius = radius if radius is not None else (-_FAR if self._higher else _FAR)
        self._user_radius = radius is not None
        self._params = {**sp, "params": inner}
        self._data = queries
        self._field = anns_field
        self._filter = filter.strip()
        self._filter_params = filter_params
        self._fields = output_fields
        self._partitions = partition_names
        if isinstance(round_decimal, bool) or not isinstance(round_decimal, numbers.Integral) \
                or not -1 <= round_decimal <= 6:
            raise InvalidArgument(f"round_decimal {round_decimal!r} is invalid, should be -1 or "
                                  "an integer in range [0, 6]")
        self._round = int(round_decimal)
        self._consistency = consistency_level
        # Every page reads the first page's snapshot (pymilvus pins it too): rows written during
        # the iteration are not seen, and none is returned twice or skipped because of them.
        self._snapshot = proxy.read_timestamp(db, collection_name, consistency_level)
        self._pk = layout.pk
        self._batch = int(batch_size)
        self._left = None if limit == UNLIMITED else int(limit)
        self._bound: float | None = None
        self._at_bound: list[Any] = []  # pks returned at distance == self._bound
        self._done = False
        self._exhausted = False
        self._pending: list[dict[str, Any]] | None = self._fetch()  # checks every argument now

    def _fetch(self) -> list[dict[str, Any]]:
        want = self._batch if self._left is None else min(self._batch, self._left)
        if want == 0:
            return []
        params = dict(self._params["params"])
        flt, fparams = self._filter, dict(self._filter_params)
        if self._bound is None:
            if self._user_radius:
                params["radius"] = self._radius
            if self._first_rf is not None:
                params["range_filter"] = self._first_rf
        else:
            params["radius"] = self._radius
            params["range_filter"] = self._bound
            if self._at_bound:
                exclude = f"{self._pk} not in {{{_EXCLUDE_PARAM}}}"
                flt = f"({flt}) and {exclude}" if flt else exclude
                fparams[_EXCLUDE_PARAM] = self._at_bound
        sp = {**{k: v for k, v in self._params.items() if k != "params"}, "params": params}
        # round_decimal stays off here: the cursor needs the exact float32 distances.
        hits = self._proxy.search(self._db, self._name, self._data, want, self._fields, flt,
                                  fparams or None, sp, self._field, self._partitions, 0, -1,
                                  consistency_level=self._consistency,
                                  snapshot_ts=self._snapshot)[0]
        self._exhausted = len(hits) < want  # the ranking ended inside this page
        if hits:
            last = hits[-1]["distance"]
            tail = [h["id"] for h in hits if h["distance"] == last]
            self._at_bound = (self._at_bound + tail) if last == self._bound else tail
            self._bound = last
        return hits

    def next(self) -> list[dict[str, Any]]:
        """The next page of hits, closest first; an empty list once exhausted."""
        if self._done:
            return []
        if self._pending is not None:
            page = self._pending
        else:
            page = [] if self._exhausted else self._fetch()
        self._pending = None
        if not page:
            self._done = True
            return []
        if self._left is not None:
            self._left -= len(page)
        if self._round >= 0:
            page = [{**h, "distance": round(h["distance"], self._round)} for h in page]
        return page

    def close(self) -> None:
        """Ends the iteration: later ``next()`` calls return an empty list."""
        self._done = True
        self._pending = None
