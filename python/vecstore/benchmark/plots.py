"""Plots for ``vecstore bench`` (matplotlib, Agg backend; callers skip plots when it is missing):
recall-QPS curves, one line per engine, and the ingestion rows/s bar chart."""

from __future__ import annotations

from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def recall_qps(rows: list[dict[str, Any]], path: str, title: str) -> None:
    """One curve per engine row that has a ``curve`` of (knob, recall, QPS one query per call)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        if r.get("curve"):
            pts = r["curve"]
            ax.plot([p[1] for p in pts], [p[2] for p in pts], marker="o", label=r["engine"])
    ax.set_xlabel("recall@10")
    ax.set_ylabel("queries per second (one query per call)")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    # Below the axes: inside, it hid the curves' low-recall ends.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def ingest_bars(result: dict[str, Any], path: str) -> None:
    """Horizontal bars: rows/s per system and the disk's write+fdatasync ceiling (log scale)."""
    plt = _pyplot()
    names = [r["system"] + (f" ({r['rows']:,} rows)" if r["rows"] < result["n"] else "")
             for r in result["systems"]] + ["disk write+fdatasync ceiling"]
    values = [r["rows_per_s"] for r in result["systems"]] + [result["disk"]["rows_per_s"]]
    colors = ["tab:blue" if r["key"].startswith("vecstore") else "tab:gray"
              for r in result["systems"]] + ["tab:green"]
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(names) + 1.5))
    y = list(range(len(names)))[::-1]
    ax.barh(y, values, color=colors)
    for yi, v in zip(y, values):
        ax.text(v, yi, f" {v:,.0f}", va="center", fontsize=8)
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(min(values) / 2, max(values) * 8)
    ax.set_xlabel("rows per second (insert in 10,000-row batches + flush), log scale")
    ax.set_title(f"Durable ingestion, {result['n']:,} x {result['dim']} float32 + int64 id")
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
