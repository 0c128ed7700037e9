"""One event loop per process, reused by every invocation.

`asyncio.run` would make and close a loop per call. Keeping one costs nothing and lets what is
bound to a loop (locks, the shared in-process rate budget) live across warm invocations. Each
`PleoClient` still opens its own connection pool for its credential and closes it after use.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Coroutine

_loop: asyncio.AbstractEventLoop | None = None


def run[T](coroutine: Coroutine[Any, Any, T]) -> T:
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
    return _loop.run_until_complete(coroutine)
