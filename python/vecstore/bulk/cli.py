"""``vecstore import`` and ``vecstore export``: bulk import and export from the command line.

    vecstore import --data DIR --collection NAME [--partition P] [--skip-invalid-rows]
                    [--batch-size N] FILE...
    vecstore export --data DIR --collection NAME --out FILE.parquet [--filter EXPR]
                    [--batch-size N]

``import`` starts a job (files as ``bulk_import`` takes them: Parquet, JSON, JSONL, ``.npy`` files
or directories of them), waits for it with a progress bar on stderr (a terminal only), prints a
summary and exits 0 when it completed, 1 when it failed (the reason on stderr). ``export`` writes
the collection's rows (those matching ``--filter``) to a Parquet file, loading the collection for
the export if it was not loaded. Both open the data directory, so no other process may own it.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any


def register(subparsers: Any) -> None:
    """Adds the ``import`` and ``export`` subcommands to the ``vecstore`` parser."""
    i = subparsers.add_parser("import", help="bulk import Parquet/JSON/JSONL/NumPy files")
    i.add_argument("--data", required=True, help="the data directory (MilvusClient's uri)")
    i.add_argument("--collection", required=True)
    i.add_argument("--partition", default=None)
    i.add_argument("--db", default="", help="database (default: default)")
    i.add_argument("--skip-invalid-rows", action="store_true",
                   help="skip and count rows that do not fit the schema instead of failing")
    i.add_argument("--batch-size", type=int, default=None, help="rows read at a time (8192)")
    i.add_argument("files", nargs="+", metavar="FILE")
    i.set_defaults(fn=cmd_import)
    e = subparsers.add_parser("export", help="export a collection's rows to a Parquet file")
    e.add_argument("--data", required=True, help="the data directory (MilvusClient's uri)")
    e.add_argument("--collection", required=True)
    e.add_argument("--db", default="", help="database (default: default)")
    e.add_argument("--out", required=True, help="the Parquet file to write")
    e.add_argument("--filter", default="", help="a boolean expression selecting rows")
    e.add_argument("--batch-size", type=int, default=1000, help="rows per page and row group")
    e.set_defaults(fn=cmd_export)


def cmd_import(args: argparse.Namespace) -> int:
    from vecstore import MilvusClient

    options: dict[str, Any] = {"skip_invalid_rows": args.skip_invalid_rows}
    if args.batch_size is not None:
        options["batch_size"] = args.batch_size
    start = time.perf_counter()
    with MilvusClient(args.data, db_name=args.db) as client:
        job = client.bulk_import(args.collection, args.files, args.partition, **options)
        state = client.wait_for_import(job, progress=True)
    seconds = time.perf_counter() - start
    if state["state"] != "Completed":
        print(f"vecstore: import failed: {state['reason']}", file=sys.stderr)
        return 1
    rows = state["importedRows"]
    print(f"imported {rows:,} rows into {args.collection} in {seconds:.1f} s "
          f"({rows / max(seconds, 1e-9):,.0f} rows/s)"
          + (f"; skipped {state['skippedRows']:,} invalid rows" if state["skippedRows"] else ""))
    for line in state["skipped"]:
        print(f"  skipped: {line}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from vecstore import MilvusClient
    from vecstore.bulk.export import export_collection

    start = time.perf_counter()
    with MilvusClient(args.data, db_name=args.db) as client:
        loaded = client.get_load_state(args.collection)["state"].name == "Loaded"
        if not loaded:
            client.load_collection(args.collection)
        try:
            rows = export_collection(client, args.collection, args.out, args.filter,
                                     args.batch_size)
        finally:
            if not loaded:
                client.release_collection(args.collection)
    print(f"exported {rows:,} rows of {args.collection} to {args.out} in "
          f"{time.perf_counter() - start:.1f} s")
    return 0
