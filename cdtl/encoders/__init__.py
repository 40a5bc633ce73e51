"""Turn item and user texts into vectors with pretrained language models, cached on disk so a catalogue is encoded once."""

from cdtl.encoders.cache import CacheStats, EmbeddingCache, text_key
from cdtl.encoders.text_encoder import DEFAULT_MODEL, POOLINGS, TextEncoder, pool

__all__ = ["DEFAULT_MODEL", "POOLINGS", "CacheStats", "EmbeddingCache", "TextEncoder", "pool", "text_key"]
