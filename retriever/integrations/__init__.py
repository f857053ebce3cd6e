"""Adapters that plug the retriever into other frameworks (optional extras)."""
