"""Request limits of ``vecstore serve``, checked before a request reaches the servicer.

- message size: ``--max-message-mb`` (default 512) each way; gRPC itself refuses a larger message
  with ``RESOURCE_EXHAUSTED``, before it is decoded.
- rows per insert or upsert: ``--max-insert-rows`` (default 1,000,000).
- ``limit`` (topk) + ``offset`` of a search, hybrid search or query: 16384 (Milvus's
  ``maxTopK`` / max result window).
- nq (queries per search): 16384 (Milvus's ``maxNQ``).
- filter expression length: ``--max-expr-kb`` (default 1024 KiB). pymilvus turns
  ``delete(ids=...)`` and ``get(ids=...)`` into ``pk in [...]`` expressions, so this also bounds
  how many ids one such call may name.

An over-limit request is answered with an invalid-parameter status (1100) whose message names
the limit and the option that sets it; nothing is served.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vecstore.errors import InvalidArgument

MAX_TOPK = 16384
MAX_NQ = 16384


@dataclass(frozen=True, slots=True)
class Limits:
    max_message_bytes: int = 512 * 1024 * 1024
    max_insert_rows: int = 1_000_000
    max_topk: int = MAX_TOPK
    max_nq: int = MAX_NQ
    max_expr_bytes: int = 1024 * 1024

    def check(self, method: str, request: Any) -> None:
        """Raises :class:`InvalidArgument` when ``request`` is over a limit."""
        if method in ("Insert", "Upsert"):
            rows = int(request.num_rows)
            if rows > self.max_insert_rows:
                raise InvalidArgument(
                    f"{method.lower()} of {rows} rows exceeds the limit of "
                    f"{self.max_insert_rows} rows per request (vecstore serve "
                    "--max-insert-rows): split it into smaller batches")
        elif method == "Search":
            self._search(request, request.search_params)
        elif method == "HybridSearch":
            for sub in request.requests:
                self._search(sub, sub.search_params)
            self._window(_kv(request.rank_params), "limit", "hybrid search")
        elif method == "Query":
            self._expr(request.expr)
            self._window(_kv(request.query_params), "limit", "query")
        elif method == "Delete":
            self._expr(request.expr)

    def _search(self, request: Any, params: Any) -> None:
        self._expr(request.dsl)
        if int(request.nq) > self.max_nq:
            raise InvalidArgument(f"nq ({request.nq}) exceeds the limit of {self.max_nq} "
                                  "queries per search (maxNQ)")
        self._window(_kv(params), "topk", "search")

    def _window(self, params: dict[str, str], key: str, what: str) -> None:
        try:
            limit = int(params.get(key, 0) or 0)
            offset = int(params.get("offset", 0) or 0)
        except ValueError:
            return  # not a number: the servicer reports it
        if limit + offset > self.max_topk:
            raise InvalidArgument(
                f"{what} limit ({limit}) + offset ({offset}) exceeds the limit of "
                f"{self.max_topk} (maxTopK): use an iterator to read more results")

    def _expr(self, expr: str) -> None:
        size = len(expr.encode()) if expr else 0
        if size > self.max_expr_bytes:
            raise InvalidArgument(
                f"filter expression of {size} bytes exceeds the limit of {self.max_expr_bytes} "
                "bytes (vecstore serve --max-expr-kb): split the call")


def _kv(pairs: Any) -> dict[str, str]:
    return {p.key: p.value for p in pairs}
