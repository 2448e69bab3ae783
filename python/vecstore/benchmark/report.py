"""What ``vecstore bench`` prints and writes: a summary table a newcomer can read (what was
measured, on what data, each system's figure, vecstore's ratio to it, the issue's bar where one
applies), ``results.json``, ``results.md`` and the plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vecstore.benchmark import indexes, plots


def _ingest_rows(r: dict[str, Any]) -> list[list[str]]:
    data = f"generated {r['n']:,} x {r['dim']} + int64 id, {r['batch']:,}-row batches"
    if r.get("repeat", 1) > 1:
        data += f", best of {r['repeat']} rounds"
    us = next(s for s in r["systems"] if s["key"] == "vecstore")["rows_per_s"]
    bar_of = {b["against"]: b for b in r["bars"]}
    out = []
    for s in r["systems"]:
        b = bar_of.get(s["system"])
        done = "" if s["rows"] == r["n"] else f" ({s['rows']:,} rows in the time budget)"
        form = "" if s["form"] in s["system"] else f", {s['form']}"
        out.append(["durable insert + flush, rows/s", data, f"{s['system']}{form}{done}",
                    f"{s['rows_per_s']:,.0f}", f"{us / s['rows_per_s']:.2f}x",
                    f">= {b['target']:g}x" if b else "",
                    ("PASS" if b["pass"] else "FAIL") if b else ""])
    disk = r["disk"]
    b = bar_of["disk write+fdatasync ceiling"]
    out.append(["durable insert + flush, rows/s", data,
                f"disk write+fdatasync ({disk['mb_per_s']:,.0f} MB/s)",
                f"{disk['rows_per_s']:,.0f}", f"{b['ratio']:.0%} of it",
                f">= {b['target']:.0%}", "PASS" if b["pass"] else "FAIL"])
    return out


def _search_rows(rows: list[dict[str, Any]], data: str) -> list[list[str]]:
    us = rows[0]
    out = []
    for r in rows:
        knob = r.get("knob", "ef")
        fig = (f"{r['qps1']:,.0f} / {r['qps1000']:,.0f} (recall {r['recall']:.3f} at "
               f"{knob}={r['value']})")
        out.append([f"HNSW QPS at recall@10 >= {indexes.TARGET}, 1 / all queries per call",
                    data, r["engine"], fig,
                    f"{us['qps1'] / r['qps1']:.2f}x / {us['qps1000'] / r['qps1000']:.2f}x", "",
                    ""])
    return out


def summary(result: dict[str, Any]) -> str:
    rows: list[list[str]] = []
    if "ingest" in result:
        rows += _ingest_rows(result["ingest"])
    name = result.get("data", "clustered")
    if "hnsw" in result:
        rows += _search_rows(result["hnsw"], f"{name} {result['n']:,} x {result['dim']}")
    if result.get("peers", {}).get("rows"):
        p = result["peers"]
        rows += _search_rows(p["rows"], f"{name} {p['n']:,} x {result['dim']}")
    if "filter" in result:
        f = result["filter"]
        worst = min(f, key=lambda r: r["recall"])
        slow = min(f[:-1] or f, key=lambda r: r["qps1"] / f[-1]["qps1"])  # last: 100%
        rows.append(["filtered HNSW, 0.1%-100% rows allowed", f"{name} {result['n']:,}",
                     "vecstore", f"recall >= {worst['recall']:.3f}; QPS >= "
                     f"{slow['qps1'] / f[-1]['qps1']:.2f}x unfiltered (at "
                     f"{slow['selectivity']:.1%})", "", "", ""])
    head = ["measured", "data", "system", "figure", "vecstore / system", "bar", "result"]
    lines = ["## Summary", "",
             "Each line is one system measured in this run; 'vecstore / system' > 1 means "
             "vecstore is faster. Details per part follow.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    skipped = sorted(set(result.get("ingest", {}).get("skipped", []))
                     | set(result.get("peers", {}).get("skipped", [])))
    if skipped:
        lines += ["", f"Not installed, skipped: {', '.join(skipped)}."]
    return "\n".join(lines)


def header(result: dict[str, Any]) -> str:
    m = result["meta"]
    vers = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    return (f"# vecstore bench{' --quick' if result['quick'] else ''}\n\n"
            f"{m['date']}; {m['cpu']}, {m['cpus']} CPUs, SIMD {m['simd']}; Python {m['python']}, "
            f"vecstore {m['vecstore']}; {vers}.\nSizes: "
            + ", ".join(f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}"
                        for k, v in result["sizes"].items()))


def plot_hnsw(result: dict[str, Any], path: str) -> None:
    plots.recall_qps(result["hnsw"], path, f"HNSW vs libraries, {result.get('data')} "
                     f"{result['n']:,} x {result['dim']} (M={indexes.M}, "
                     f"efC={indexes.EF_CONSTRUCTION})")


def write(result: dict[str, Any], out: Path, sections: list[str]) -> None:
    """results.json, results.md and, if matplotlib imports, hnsw.png, peers.png, ingest.png."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=1, default=float))
    (out / "results.md").write_text("\n\n".join([header(result)] + sections) + "\n")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib is not installed: no plots", flush=True)
        return
    if result.get("hnsw"):
        plot_hnsw(result, str(out / "hnsw.png"))
    if result.get("peers", {}).get("rows"):
        p = result["peers"]
        plots.recall_qps(p["rows"], str(out / "peers.png"),
                         f"HNSW through each database, {result.get('data')} {p['n']:,} x "
                         f"{result['dim']}")
    if "ingest" in result:
        plots.ingest_bars(result["ingest"], str(out / "ingest.png"))
