"""The data node role: background work on a collection's stored data, off the write and read
paths — sealing and flushing growing segments, and compacting sealed ones.

What it owns: the policy that decides when a growing segment is sealed
(:mod:`~vecstore.data_node.seal_policy`), the compaction planner and row merger
(:mod:`~vecstore.data_node.compaction`), and the background thread that runs both and the
manual compaction jobs (:mod:`~vecstore.data_node.worker`). What it reads: growing-segment
statistics and sealed segments (mapped, through :mod:`vecstore.storage.segment`); what it writes:
new segment bundles in the object store. It commits nothing itself: the wiring
(:mod:`vecstore.transport.embedded`) orchestrates each task across roles and the coordinator
commits it in the meta store.

Invariants: at most one task (flush, compaction, truncate, drop) runs per collection at a time;
no task holds a lock that inserts or searches wait on while it reads or writes files.
"""

from vecstore.data_node.seal_policy import DataNodeConfig
from vecstore.data_node.worker import CompactionJobs, DataNode

__all__ = ["CompactionJobs", "DataNode", "DataNodeConfig"]
