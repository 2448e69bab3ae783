"""Vector index engines (issue 5): approximate indexes built per sealed segment.

Each engine is a C++ class in ``cpp/index/`` behind a thin Python wrapper here: built from a
float32 matrix, searched with an optional allow bitset (filters, deletes, MVCC), serialised to
bytes that the segment bundle stores and opened again without rebuilding. The data node builds
them and the query node searches them; this package knows nothing of either.
"""
