"""The query node role: loads sealed segments from object storage (by mapping) and searches and
filters them under MVCC.

Built so far: search over one sealed segment (:mod:`vecstore.query_node.sealed`) and the node's
per-collection segment set, swapped atomically by flush, compaction and truncate
(:mod:`vecstore.query_node.node`). ``vecstore serve --query-nodes N`` runs the sealed segments'
vector searches in worker processes (:mod:`vecstore.query_node.remote`, the server side;
:mod:`vecstore.query_node.worker`, the process; :mod:`vecstore.query_node.rpc`, their messages).
"""
