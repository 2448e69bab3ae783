"""The streaming node role: a shard's WAL, its growing segments and their queries, and the
conversion of growing data into sealed segments.

Built so far: the growing segment (:mod:`~vecstore.streaming_node.growing`), the shard's WAL-first
write path and replay (:mod:`~vecstore.streaming_node.shard`, payloads in
:mod:`~vecstore.streaming_node.records`) and flushing a snapshot to a sealed segment
(:mod:`~vecstore.streaming_node.flush`). When to seal is the data node's policy
(:mod:`vecstore.data_node.seal_policy`); the shard reports its growing segment's size and age.
"""
