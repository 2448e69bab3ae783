"""The proxy role: stateless validation, routing by shard/channel, fan-out, and the reduce that
merges per-segment results into the answer.

Built so far: the top-k reduce (:mod:`vecstore.proxy.reduce`).
"""
