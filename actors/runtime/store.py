"""What a store needs to run SQL: a pool, a connection or a runtime Transaction."""

from __future__ import annotations

from typing import Any, Protocol


class Executor(Protocol):
    """An asyncpg pool or connection, or a runtime Transaction: each store's functions take
    one, so the same query runs alone or inside a handler's transaction."""

    async def execute(self, query: str, *args: Any) -> str: ...

    async def fetch(self, query: str, *args: Any) -> list[Any]: ...

    async def fetchrow(self, query: str, *args: Any) -> Any: ...

    async def fetchval(self, query: str, *args: Any) -> Any: ...
