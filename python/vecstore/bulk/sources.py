"""Input files of a bulk import, read in bounded batches.

A *source* is one unit of input: a Parquet file, a JSON file, a JSONL file, or a group of NumPy
files (one ``<field>.npy`` per field, as Milvus's BulkWriter writes them: a directory of them, or
the ``.npy`` paths listed together). :func:`open_sources` turns the ``files`` argument of
``bulk_import`` into sources, checking only what is cheap (existence, format, headers), before
anything is written. Each source then

- names its columns where the format has a header (``fields``; None for JSON rows),
- counts its rows (``count_rows``: Parquet footer, NPY header; JSON and JSONL are read through
  once, a row at a time),
- yields :class:`Chunk` s of at most ``batch_size`` rows (``chunks``).

Memory: a chunk holds at most ``batch_size`` rows, whatever the file's size.

- Parquet: ``ParquetFile.iter_batches`` over a reader opened with ``pre_buffer=False`` and a
  ``buffer_size`` (1 MiB): column chunks are read through a small buffer, page by page, as rows
  are decoded. (With pyarrow's default, ``pre_buffer=True``, the reader caches the raw column
  chunks of the row groups it reads ahead: measured at 140 MiB of Arrow memory for a 4 MiB
  batch, versus 16 MiB this way.);
- NumPy: ``np.load(mmap_mode="r")`` and slices copied out one chunk at a time (arrays of Python
  objects cannot be mapped and are refused: save strings as ``dtype=str``);
- JSONL: one line at a time;
- JSON (``{"rows": [...]}`` or ``[...]``): parsed incrementally, one row object at a time, from a
  1 MiB window (:func:`json_rows`), never the whole document.

Row numbers in chunks and errors are 0-based positions among the file's rows (for JSONL, blank
lines are not rows).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from vecstore.errors import InvalidArgument, NotFoundError

FORMATS = (".parquet", ".npy", ".json", ".jsonl")
_WINDOW = 1 << 20  # characters the JSON parser reads at a time
_PARQUET_BUFFER = 1 << 20  # bytes of a column chunk the Parquet reader reads at a time


@dataclass(frozen=True)
class Chunk:
    """Rows ``start .. start + rows - 1`` of a source: a ``pyarrow.RecordBatch`` (Parquet), a
    dict of numpy arrays (NumPy) or a list of parsed rows (JSON, JSONL; a JSONL line that is not
    valid JSON is a :class:`BadLine`)."""

    start: int
    rows: int
    data: Any


@dataclass(frozen=True)
class BadLine:
    """A JSONL line that does not parse; validation reports (or skips) it as a bad row."""

    error: str


class ParquetSource:
    def __init__(self, path: str) -> None:
        import pyarrow.parquet as pq

        self.name = path
        try:
            self._file = pq.ParquetFile(path, pre_buffer=False, buffer_size=_PARQUET_BUFFER)
        except Exception as e:  # pyarrow raises several types for a file that is not Parquet
            raise InvalidArgument(f"{path} is not a readable Parquet file ({e}); give a file "
                                  "written by pyarrow.parquet or Milvus's BulkWriter") from None
        self.fields: list[str] | None = list(self._file.schema_arrow.names)

    def count_rows(self) -> int:
        return int(self._file.metadata.num_rows)

    def chunks(self, batch_size: int) -> Iterator[Chunk]:
        start = 0
        for batch in self._file.iter_batches(batch_size=batch_size):
            yield Chunk(start, batch.num_rows, batch)
            start += batch.num_rows


class NumpySource:
    def __init__(self, paths: list[str]) -> None:
        self.name = os.path.dirname(paths[0]) if len(paths) > 1 else paths[0]
        self._arrays: dict[str, np.ndarray] = {}
        for path in paths:
            field = os.path.basename(path)[: -len(".npy")]
            if field in self._arrays:
                raise InvalidArgument(f"two NumPy files for field {field!r} in one group: "
                                      f"{path}; give one <field>.npy per field")
            try:
                arr = np.load(path, mmap_mode="r", allow_pickle=False)
            except ValueError as e:
                raise InvalidArgument(
                    f"{path} cannot be memory-mapped ({e}); save strings as a fixed-width "
                    "array (np.array(values, dtype=str)) and JSON as strings") from None
            if arr.ndim == 0:
                raise InvalidArgument(f"{path} holds a scalar; give one value per row")
            self._arrays[field] = arr
        lengths = {f: len(a) for f, a in self._arrays.items()}
        if len(set(lengths.values())) > 1:
            raise InvalidArgument(f"the NumPy files of {self.name} have different row counts "
                                  f"{lengths}; every field needs one value per row")
        self.fields = list(self._arrays)

    def count_rows(self) -> int:
        return len(next(iter(self._arrays.values())))

    def chunks(self, batch_size: int) -> Iterator[Chunk]:
        n = self.count_rows()
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            # np.array copies the slice out of the mapping: the chunk owns its rows.
            yield Chunk(start, stop - start,
                        {f: np.array(a[start:stop]) for f, a in self._arrays.items()})


def _row_chunks(rows: Iterator[Any], batch_size: int) -> Iterator[Chunk]:
    """Row dicts (or BadLine markers) grouped into chunks of at most ``batch_size``."""
    chunk: list[Any] = []
    start = 0
    for row in rows:
        chunk.append(row)
        if len(chunk) == batch_size:
            yield Chunk(start, len(chunk), chunk)
            start += len(chunk)
            chunk = []
    if chunk:
        yield Chunk(start, len(chunk), chunk)


class JsonlSource:
    def __init__(self, path: str) -> None:
        self.name = path
        self.fields: list[str] | None = None

    def count_rows(self) -> int:
        with open(self.name, "rb") as f:
            return sum(1 for line in f if line.strip())

    def chunks(self, batch_size: int) -> Iterator[Chunk]:
        def rows() -> Iterator[Any]:
            with open(self.name, encoding="utf-8") as f:
                for line in f:
                    if not line.strip():
                        continue
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as e:
                        yield BadLine(f"not valid JSON ({e})")

        return _row_chunks(rows(), batch_size)


class JsonSource:
    def __init__(self, path: str) -> None:
        self.name = path
        self.fields: list[str] | None = None

    def count_rows(self) -> int:
        with open(self.name, encoding="utf-8") as f:
            return sum(1 for _ in json_rows(f, self.name))

    def chunks(self, batch_size: int) -> Iterator[Chunk]:
        def rows() -> Iterator[Any]:
            with open(self.name, encoding="utf-8") as f:
                yield from json_rows(f, self.name)

        return _row_chunks(rows(), batch_size)


class _Window:
    """A sliding window over a text stream for :func:`json_rows`."""

    def __init__(self, stream: Any, window: int) -> None:
        self.stream, self.window = stream, window
        self.buf, self.pos, self.eof = "", 0, False

    def more(self) -> bool:
        if self.eof:
            return False
        data = self.stream.read(self.window)
        if not data:
            self.eof = True
            return False
        self.buf = self.buf[self.pos:] + data  # drop what was consumed
        self.pos = 0
        return True

    def peek(self) -> str:
        """The next non-whitespace character ('' at the end), not consumed."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf) or not self.more():
                return self.buf[self.pos:self.pos + 1]


def json_rows(stream: Any, name: str, window: int = _WINDOW) -> Iterator[Any]:
    """The rows of a JSON document ``{"rows": [row, ...]}`` or ``[row, ...]``, one at a time,
    read through a window of ``window`` characters (a row larger than it widens the window)."""
    decoder = json.JSONDecoder()
    w = _Window(stream, window)

    def fail(what: str) -> InvalidArgument:
        return InvalidArgument(f"{name}: {what}; a JSON import file holds {{\"rows\": [...]}} or "
                               "a list of row objects")

    def value() -> Any:
        w.peek()  # raw_decode does not skip leading whitespace
        while True:
            try:
                obj, end = decoder.raw_decode(w.buf, w.pos)
            except json.JSONDecodeError as e:
                if w.more():
                    continue
                raise fail(f"not valid JSON at character {e.pos} of the window ({e.msg})"
                           ) from None
            # A number or literal that ends the window may continue in the next read.
            if end == len(w.buf) and w.more():
                continue
            w.pos = end
            return obj

    def expect(ch: str) -> None:
        if w.peek() != ch:
            raise fail(f"expected {ch!r}, found {w.peek() or 'the end of the file'!r}")
        w.pos += 1

    wrapped = w.peek() == "{"
    if wrapped:
        expect("{")
        if w.peek() != '"' or value() != "rows":
            raise fail('the object\'s only key must be "rows"')
        expect(":")
    expect("[")
    if w.peek() == "]":
        w.pos += 1
    else:
        while True:
            yield value()
            if w.peek() == ",":
                w.pos += 1
                continue
            expect("]")
            break
    if wrapped:
        expect("}")
    if w.peek():
        raise fail("more data after the rows")


def open_sources(files: Any) -> list[Any]:
    """Sources for ``files``: a list of paths (a directory holds NumPy files; ``.npy`` paths
    listed next to each other form one group) or of lists of paths (Milvus's form: each inner
    list one source). Raises InvalidArgument / NotFoundError before reading any rows."""
    if isinstance(files, (str, os.PathLike)) or not isinstance(files, (list, tuple)) or \
            not files:
        raise InvalidArgument("files must be a non-empty list of paths (or of lists of paths)")
    sources: list[Any] = []
    group: list[str] = []
    for item in files:
        if isinstance(item, (list, tuple)):
            if group:
                sources.append(NumpySource(group))
                group = []
            paths = [_path(p) for p in item]
            if len(paths) == 1 and not paths[0].endswith(".npy"):
                sources.append(_single(paths[0]))
            elif paths and all(p.endswith(".npy") for p in paths):
                sources.append(NumpySource(paths))
            else:
                raise InvalidArgument(f"a group of files {item!r} must be .npy files (one per "
                                      "field); list Parquet and JSON files one by one")
            continue
        path = _path(item)
        if path.endswith(".npy"):
            group.append(path)
            continue
        if group:
            sources.append(NumpySource(group))
            group = []
        sources.append(_single(path))
    if group:
        sources.append(NumpySource(group))
    return sources


def _path(item: Any) -> str:
    if not isinstance(item, (str, os.PathLike)):
        raise InvalidArgument(f"files must hold paths, got {type(item).__name__}")
    path = os.fspath(item)
    if not os.path.exists(path):
        raise NotFoundError(f"import file {path} does not exist")
    if os.path.isdir(path):
        return path
    if not path.endswith(FORMATS):
        raise InvalidArgument(f"{path}: unknown import format; give a file ending in "
                              f"{', '.join(FORMATS)} or a directory of .npy files")
    return path


def _single(path: str) -> Any:
    if os.path.isdir(path):
        npys = sorted(os.path.join(path, n) for n in os.listdir(path) if n.endswith(".npy"))
        if not npys:
            raise InvalidArgument(f"directory {path} holds no .npy files; give <field>.npy "
                                  "files, one per field")
        return NumpySource(npys)
    if path.endswith(".parquet"):
        return ParquetSource(path)
    if path.endswith(".jsonl"):
        return JsonlSource(path)
    return JsonSource(path)
