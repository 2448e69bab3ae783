"""Export: a collection's rows streamed into a Parquet file that bulk import reads back.

:func:`export_collection` pages through ``query_iterator`` (one snapshot, primary-key order,
``batch_size`` rows a page; ``filter`` selects rows) and writes each page as a row group through
``pyarrow.parquet.ParquetWriter``, so memory holds one page. Pages are converted to Parquet
columns by the schema's own row conversion (``validate_rows``), so the file has the canonical
layout of :mod:`vecstore.schema.arrow`: one column per field, named like it; vectors as
fixed-size lists (bfloat16 as its raw uint16 bits, binary as packed bytes); JSON fields and the
dynamic field ``$meta`` as JSON text, as Milvus's BulkWriter writes them. The primary key is
written even when it is auto_id (importing such a file into an auto_id collection is refused:
drop the column to get new keys). Partitions are not recorded.

The file is written to ``<out>.tmp`` and renamed when complete: a failed export leaves no
truncated file under the requested name.
"""

from __future__ import annotations

import os
from typing import Any


def export_collection(client: Any, collection_name: str, out: str, filter: str = "",  # noqa: A002
                      batch_size: int = 1000) -> int:
    """Writes the rows of ``collection_name`` passing ``filter`` to the Parquet file ``out``;
    returns the number of rows. The collection must be loaded (as for query)."""
    import pyarrow.parquet as pq

    meta, schema, _ = client._proxy.collection(client._db, collection_name)
    it = client.query_iterator(collection_name, batch_size=batch_size, filter=filter,
                               output_fields=["*"])
    tmp = f"{out}.tmp"
    writer = None
    rows = 0
    try:
        while True:
            page = it.next()
            if not page:
                break
            table = schema.validate_rows(page, allow_insert_auto_id=True,
                                         reject_duplicate_pks=False)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table, row_group_size=len(page))
            rows += len(page)
        if writer is None:  # no rows: an empty file with the columns
            writer = pq.ParquetWriter(tmp, schema.validate_rows(
                [], allow_insert_auto_id=True).schema)
        writer.close()
        writer = None
        os.replace(tmp, out)
    finally:
        it.close()
        if writer is not None:
            writer.close()
        if os.path.exists(tmp):
            os.remove(tmp)
    return rows
