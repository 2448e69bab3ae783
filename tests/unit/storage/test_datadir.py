"""DataDir: the layout, one owner at a time, WAL channels, close."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vecstore.errors import InvalidArgument, NotFoundError
from vecstore.storage.datadir import DataDir
from vecstore.storage.lock import DataDirLocked


def test_layout_and_round_trip(tmp_path):
    d = tmp_path / "my_data"
    with DataDir(d) as dd:
        dd.meta.put("catalog/c1", b"schema")
        dd.objects.put("c1/p0/s1/manifest", b"m")
        dd.wal("ch0").append(b"row")
        assert dd.wal("ch0") is dd.wal("ch0")
    assert (d / "LOCK").exists() and (d / "meta.sqlite").exists()
    assert (d / "segments" / "c1" / "p0" / "s1" / "manifest").read_bytes() == b"m"
    assert list((d / "wal" / "ch0").glob("*.log"))
    with DataDir(d) as dd:
        assert dd.meta.get("catalog/c1") == b"schema"
        assert [e.payload for e in dd.wal("ch0").read()] == [b"row"]
        assert dd.channels() == ["ch0"]


def test_one_owner_per_directory(tmp_path):
    with DataDir(tmp_path, role="embedded"):
        with pytest.raises(DataDirLocked, match="embedded"):
            DataDir(tmp_path)
        code = (
            "import sys; from vecstore.storage.datadir import DataDir\n"
            "from vecstore.storage.lock import DataDirLocked\n"
            f"try:\n    DataDir({str(tmp_path)!r})\nexcept DataDirLocked as e:\n"
            "    print(e); sys.exit(3)\n"
        )
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 3, r.stderr
        assert "pid" in r.stdout
    with DataDir(tmp_path):  # released on close
        pass


def test_bad_input(tmp_path):
    with pytest.raises(InvalidArgument):
        DataDir(42)
    with pytest.raises(NotFoundError):
        DataDir(tmp_path / "missing", create=False)
    assert not (tmp_path / "missing").exists()
    dd = DataDir(tmp_path)
    for bad in ("../escape", "a/b", "", ".hidden", "x" * 200, 7):
        with pytest.raises(InvalidArgument, match="channel"):
            dd.wal(bad)
    dd.wal("ok", sync="batch")
    with pytest.raises(InvalidArgument, match="already open"):
        dd.wal("ok", sync="none")
    dd.close()
    dd.close()
    with pytest.raises(InvalidArgument, match="closed"):
        dd.wal("ok")
