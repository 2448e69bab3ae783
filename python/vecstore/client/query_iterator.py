"""``MilvusClient.query_iterator``: pymilvus's ``QueryIterator``, embedded.

Pages through the rows ``query(filter, output_fields, partition_names)`` matches, in primary-key
order, ``batch_size`` rows per :meth:`QueryIterator.next` call, the way pymilvus pages a Milvus
server: each page is one query ``pk > <last pk of the previous page> and (<filter>)`` with
``limit=batch_size``, so the total may exceed query's 16,384-row window. INT64 and VARCHAR keys
both work (the last key travels as a template parameter, never spliced into the text, so any
string key is safe). ``offset`` skips that many matching rows first; ``limit`` caps the rows
returned over all pages (-1: no cap). ``next()`` returns a list of row dicts (the primary key
always included), and an empty list once the rows, or the ``limit``, are exhausted, and after
:meth:`QueryIterator.close`.

Every argument is checked, and the first page fetched, when the iterator is created, so a bad
filter or output field raises there. Each page reads the latest snapshot: a row written or deleted
during the iteration shows up or disappears if its key is beyond the cursor (pymilvus pins the
snapshot of the first query; the proxy's query path takes no timestamp yet).
"""

from __future__ import annotations

import numbers
from typing import Any

from vecstore.client.common import iterator_filter
from vecstore.errors import InvalidArgument

MAX_BATCH_SIZE = 16384  # pymilvus's MAX_BATCH_SIZE, also query's limit ceiling
UNLIMITED = -1
# Template parameter carrying the cursor; a name user filters will not use.
_CURSOR_PARAM = "__vecstore_iterator_cursor"


def _int(value: Any, name: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low or (
            high is not None and value > high):
        bound = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise InvalidArgument(f"query_iterator: {name} must be an int {bound}, got {value!r}")
    return int(value)


class QueryIterator:
    """Pages of query results in primary-key order; see the module docstring."""

    def __init__(self, proxy: Any, db: str, collection_name: str, batch_size: int = 1000,
                 limit: int = UNLIMITED, filter: str = "",  # noqa: A002 (pymilvus's name)
                 output_fields: list[str] | None = None, partition_names: list[str] | None = None,
                 filter_params: dict | None = None, offset: int = 0,
                 consistency_level: str | None = None) -> None:
        self._batch = _int(batch_size, "batch_size", 1, MAX_BATCH_SIZE)
        self._limit = UNLIMITED if limit is None or (
            limit == UNLIMITED and not isinstance(limit, bool)) else \
            _int(limit, "limit (-1 for no limit)", 0)
        skip = _int(offset, "offset", 0)
        filter, filter_params = iterator_filter(  # noqa: A001
            "query_iterator", filter, filter_params, _CURSOR_PARAM)
        if output_fields is not None and not isinstance(output_fields, str) and \
                "count(*)" in list(output_fields):
            raise InvalidArgument("query_iterator does not count: call query(output_fields="
                                  "['count(*)']) instead")
        self._proxy = proxy
        self._db = db
        self._name = collection_name
        self._pk = proxy.collection(db, collection_name)[2].pk
        self._filter = filter
        self._params = filter_params
        self._fields = output_fields
        self._partitions = partition_names
        self._consistency = consistency_level
        # Every page reads the snapshot of the first, as pymilvus's iterator pins its first
        # query's timestamp: rows written during the iteration are not seen.
        self._snapshot = proxy.read_timestamp(db, collection_name, consistency_level)
        self._cursor: Any = None
        self._returned = 0
        self._done = False
        self._closed = False
        self._pending: list[dict[str, Any]] | None = None
        self._seek(skip)
        # Fetching the first page now checks the filter, fields and partitions eagerly, as
        # pymilvus's first query does.
        self._pending = self._page(self._want())

    def _want(self) -> int:
        if self._limit == UNLIMITED:
            return self._batch
        return min(self._batch, self._limit - self._returned)

    def _query(self, n: int, fields: list[str] | None) -> list[dict[str, Any]]:
        expr, params = self._filter, dict(self._params)
        if self._cursor is not None:
            params[_CURSOR_PARAM] = self._cursor
            cond = f"{self._pk} > {{{_CURSOR_PARAM}}}"
            expr = f"{cond} and ({self._filter})" if self._filter.strip() else cond
        return self._proxy.query(self._db, self._name, expr, fields, n, 0, params or None,
                                 self._partitions, None, consistency_level=self._consistency,
                                 snapshot_ts=self._snapshot)

    def _page(self, n: int) -> list[dict[str, Any]]:
        if self._done or n <= 0:
            return []
        rows = self._query(n, self._fields)
        if rows:
            self._cursor = rows[-1][self._pk]
        if len(rows) < n:
            self._done = True  # a short page: nothing is left beyond the cursor
        return rows

    def _seek(self, skip: int) -> None:
        # Skips by primary keys alone, up to a full query window at a time.
        while skip > 0 and not self._done:
            n = min(MAX_BATCH_SIZE, skip)
            rows = self._query(n, [])
            if rows:
                self._cursor = rows[-1][self._pk]
            if len(rows) < n:
                self._done = True
            skip -= len(rows)

    def next(self) -> list[dict[str, Any]]:
        """The next page (at most ``batch_size`` rows), or ``[]`` when none are left."""
        if self._closed:
            return []
        if self._pending is not None:
            rows, self._pending = self._pending, None
        else:
            rows = self._page(self._want())
        self._returned += len(rows)
        return rows

    def close(self) -> None:
        """Ends the iteration; later :meth:`next` calls return ``[]``."""
        self._closed = True
        self._pending = None
