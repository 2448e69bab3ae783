"""The user-facing client: :class:`MilvusClient`, pymilvus's API over vecstore's roles."""

from vecstore.client.milvus_client import IndexParams, MilvusClient

__all__ = ["IndexParams", "MilvusClient"]
