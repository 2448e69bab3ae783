"""The seal policy and the compaction planner, as pure functions."""

from __future__ import annotations

import pytest

from vecstore.data_node import DataNodeConfig
from vecstore.data_node.compaction import SegmentStats, plan
from vecstore.errors import InvalidArgument


def test_defaults_and_environment():
    c = DataNodeConfig.from_env({})
    assert (c.seal_rows, c.seal_bytes, c.seal_age_s) == (256 * 1024, 64 << 20, 600.0)
    c = DataNodeConfig.from_env({"VECSTORE_SEGMENT_MAX_ROWS": "100",
                                 "VECSTORE_SEGMENT_MAX_AGE_S": "0.5",
                                 "VECSTORE_AUTO_COMPACTION": "0"}, poll_s=0.1)
    assert (c.seal_rows, c.seal_age_s, c.auto_compact, c.poll_s) == (100, 0.5, False, 0.1)


@pytest.mark.parametrize("env", [{"VECSTORE_SEGMENT_MAX_ROWS": "many"},
                                 {"VECSTORE_SEGMENT_MAX_ROWS": "0"},
                                 {"VECSTORE_BACKGROUND": "yes"},
                                 {"VECSTORE_COMPACTION_DELETE_RATIO": "2"}])
def test_bad_environment_is_rejected_by_name(env):
    with pytest.raises(InvalidArgument, match="VECSTORE_|DataNodeConfig"):
        DataNodeConfig.from_env(env)


def test_seal_reasons():
    c = DataNodeConfig(seal_rows=100, seal_bytes=1000, seal_age_s=10)
    assert c.seal_reason(0, 0, None, 1e9) is None
    assert c.seal_reason(99, 999, 0.0, 9.9) is None
    assert c.seal_reason(100, 0, 0.0, 0.0) == "rows"
    assert c.seal_reason(1, 1000, 0.0, 0.0) == "size"
    assert c.seal_reason(1, 1, 5.0, 15.0) == "age"


def seg(i, rows, nbytes=10, deleted=0):
    return SegmentStats(i, rows, nbytes, deleted)


def test_plan_merges_small_segments_oldest_first_within_limits():
    c = DataNodeConfig(seal_rows=100, seal_bytes=10_000, compact_min_segments=3)
    small = [seg(i, 20) for i in range(1, 7)]
    big = seg(9, 80)
    assert plan([*small[:2], big], c, manual=False) == []  # too few small ones
    assert plan([*small[:2], big], c, manual=True) == [[1, 2]]
    # Packed up to 100 live rows per output; the 6th alone would only be rewritten: skipped.
    assert plan([*small, big], c, manual=False) == [[1, 2, 3, 4, 5]]


def test_plan_deletes_and_dead_groups():
    c = DataNodeConfig(seal_rows=100, seal_bytes=10_000, compact_delete_ratio=0.5)
    # A big segment with few deletes: only manual compaction rewrites it.
    assert plan([seg(1, 90, deleted=10)], c, manual=False) == []
    assert plan([seg(1, 90, deleted=10)], c, manual=True) == [[1]]
    assert plan([seg(1, 90, deleted=60)], c, manual=False) == [[1]]
    # A segment with every row deleted never makes an empty output: it joins a neighbour ...
    assert plan([seg(1, 90, deleted=90), seg(2, 30)], c, manual=True) == [[1, 2]]
    assert plan([seg(1, 90, deleted=90), seg(2, 30)], c, manual=False) == [[1, 2]]
    assert plan([seg(1, 90, deleted=90), seg(2, 99), seg(3, 98)], c, manual=False) == [[1, 3]]
    # ... or waits when nothing live is left to merge it with.
    assert plan([seg(1, 90, deleted=90)], c, manual=True) == []
