"""Run bcrypt off the event loop, in a few low-priority threads.

One bcrypt check takes hundreds of milliseconds of CPU (it releases the GIL).
On the event loop it would stall every request; in unbounded threads a login
flood would starve reads. A fixed pool of threads whose scheduling priority is
lowered (per-thread nice on Linux) keeps logins at full speed while other
requests still get the CPU first.
"""

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from auth.passwords import dummy_hash, hash_password, password_matches
from dependencies import deadline_paused

HASHING_NICENESS = 10
T = TypeVar("T")


def _lower_priority() -> None:
    # On Linux, PRIO_PROCESS with a thread id changes only that thread.
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)


class PasswordHasher:
    """Hash and check passwords in a bounded pool of low-priority threads."""

    def __init__(self, *, cost: int, threads: int) -> None:
        self.cost = cost
        self._pool = ThreadPoolExecutor(
            max_workers=threads,
            thread_name_prefix="bcrypt",
            initializer=_lower_priority,
        )
        self._dummy_hash = dummy_hash(cost=cost)

    async def hash(self, password: str) -> str:
        return await self._run(lambda: hash_password(password, cost=self.cost))

    async def matches(self, password: str, password_hash: str | None) -> bool:
        """Check a password; with no hash (an unknown email, or an account
        without a password), check a dummy one.

        The dummy check takes as long as a real one, so an unknown email and a
        wrong password cannot be told apart by timing.
        """
        stored = password_hash or self._dummy_hash
        matched = await self._run(lambda: password_matches(password, stored))
        return matched and bool(password_hash)

    async def _run(self, work: Callable[[], T]) -> T:
        # A login flood queues here; the wait is ours, not the database's.
        with deadline_paused():
            return await asyncio.get_running_loop().run_in_executor(self._pool, work)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
