"""Storage: asyncpg with SQL kept in .sql files, one named block per query."""

from alertd.store.queries import Queries, queries

__all__ = ["Queries", "queries"]
