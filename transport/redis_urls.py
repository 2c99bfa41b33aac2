"""How SPLITGO_REDIS_URL names several nodes of a Redis Cluster: comma-separated URLs.
Pure (no redis import), so the settings check reads the list the transport connects to."""

from __future__ import annotations


def seed_urls(url: str) -> list[str]:
    """The URLs a setting names (one, or several comma-separated), blanks dropped."""
    return [part.strip() for part in url.split(",") if part.strip()]
