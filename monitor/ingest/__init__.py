"""Ingestion: fetch (guarded HTTP), parse, normalise, full text, topic relevance, source health."""
