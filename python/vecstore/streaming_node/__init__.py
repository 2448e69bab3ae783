"""The streaming node role: a shard's WAL, its growing segments and their queries, and the
conversion of growing data into sealed segments.

Built so far: the growing segment (:mod:`vecstore.streaming_node.growing`).
"""
