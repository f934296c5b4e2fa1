"""The story engine: duplicates and origins, clustering, corroboration, impact, sentiment, storylines."""
