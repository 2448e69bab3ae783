"""HNSW search through the databases users would compare vecstore with: vecstore's whole stack
(MilvusClient) beside Milvus Lite, LanceDB and Chroma (:mod:`vecstore.benchmark.peers`), each
only if installed, on the same base rows, the same queries and the same recall@10 computation
(:func:`vecstore.benchmark.indexes.recall` against exact L2 top-10).

Every engine is built with M=16 and efConstruction=200 (Lance: ``m``/``ef_construction`` of
IVF_HNSW_SQ; Chroma: ``max_neighbors``/``ef_construction``) and swept over the same ef ladder;
reported are build seconds (what each system's build step is differs: see the peer modules),
the smallest ef reaching recall@10 >= 0.95 and the QPS there, one query per call and all queries
in one call, and the recall/QPS curve. A peer that raises is reported with its error, not fatal.
"""

from __future__ import annotations

import traceback
from typing import Any

import numpy as np

from vecstore.benchmark import indexes, peers


def engines() -> tuple[list[Any], list[str]]:
    """vecstore first, then each installed peer; and the names of the peers not installed."""
    out: list[Any] = [indexes.Stack("HNSW", {"M": indexes.M,
                                             "efConstruction": indexes.EF_CONSTRUCTION}, "ef")]
    skipped = []
    for name in peers.PEERS:
        module = peers.load(name)
        if module is None:
            skipped.append(name)
        else:
            out.append(module.Search(indexes.M, indexes.EF_CONSTRUCTION))
    return out, skipped


def bench_peers(base: np.ndarray, queries: np.ndarray, truth: np.ndarray, curve: bool,
                ladder: list[int], log: Any = print) -> dict[str, Any]:
    found, skipped = engines()
    rows, failed = [], []
    for e in found:
        try:
            build = e.build(base)
            rows.append({"engine": e.name, "knob": e.knob, "n": int(base.shape[0]),
                         "build_s": build, **indexes.ladder_run(e, queries, truth, ladder, curve)})
            log(f"  {e.name}: {build:.1f} s, {e.knob} {rows[-1]['value']}, recall "
                f"{rows[-1]['recall']:.3f}, {rows[-1]['qps1']:.0f} / {rows[-1]['qps1000']:.0f} "
                "QPS", flush=True)
        except Exception as exc:  # a peer's failure is reported, the others still run
            if not rows:
                raise  # vecstore itself
            failed.append({"engine": e.name, "error": f"{type(exc).__name__}: {exc}"})
            log(f"  {e.name} failed:\n{traceback.format_exc()}", flush=True)
        finally:
            try:
                e.close()
            except Exception:
                pass
    return {"n": int(base.shape[0]), "nq": int(len(queries)), "rows": rows,
            "skipped": skipped, "failed": failed}


def table(result: dict[str, Any]) -> str:
    rows = result["rows"]
    us = rows[0]
    out = [f"HNSW through each database, {result['n']:,} rows, {result['nq']:,} queries, "
           f"M={indexes.M}, efConstruction={indexes.EF_CONSTRUCTION}; QPS at the smallest ef "
           f"reaching recall@10 >= {indexes.TARGET}.",
           "",
           "| engine | build s | smallest ef | recall@10 | QPS 1/call | QPS all/call | "
           "vecstore / this, 1/call | vecstore / this, all/call |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['engine']} | {r['build_s']:.1f} | {r['value']} | {r['recall']:.3f} | "
                   f"{r['qps1']:,.0f} | {r['qps1000']:,.0f} | {us['qps1'] / r['qps1']:.2f}x | "
                   f"{us['qps1000'] / r['qps1000']:.2f}x |")
    notes = []
    if any(r["recall"] < indexes.TARGET for r in rows):
        notes.append(f"A recall below {indexes.TARGET} means the ladder's largest ef did not "
                     "reach it; its QPS is at that ef.")
    for f in result["failed"]:
        notes.append(f"{f['engine']} failed: {f['error']}")
    if result["skipped"]:
        notes.append(f"Not installed, skipped: {', '.join(result['skipped'])}.")
    return "\n".join(out + ([""] + notes if notes else []))
