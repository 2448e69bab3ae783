"""The user-facing client: :class:`MilvusClient`, pymilvus's API over vecstore's roles."""

from vecstore.client.milvus_client import IndexParams, MilvusClient
from vecstore.client.rankers import AnnSearchRequest, RRFRanker, WeightedRanker

__all__ = ["AnnSearchRequest", "IndexParams", "MilvusClient", "RRFRanker", "WeightedRanker"]
