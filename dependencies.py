"""What the service waits on (the database, Redis): each request's deadline, and
outages, logged once when they start and once when they end, however many
requests fail in between."""

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar

log = logging.getLogger("user_service.dependencies")
# When the current request must be answered, on the event loop's clock.
DEADLINE: ContextVar[float | None] = ContextVar("deadline", default=None)


@contextlib.contextmanager
def deadline_in(seconds: float) -> Iterator[None]:
    """Whatever this block waits on must answer within `seconds` from now."""
    token = DEADLINE.set(asyncio.get_running_loop().time() + seconds)
    try:
        yield
    finally:
        DEADLINE.reset(token)


@contextlib.contextmanager
def deadline_paused() -> Iterator[None]:
    """The block's time does not count against the deadline: the service's own
    work (hashing a password), however long its queue, is no dependency."""
    deadline = DEADLINE.get()
    if deadline is None:
        yield
        return
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        yield
    finally:
        DEADLINE.set(deadline + loop.time() - started)


def time_left(default: float) -> float:
    """Seconds until the current deadline, or `default` outside a request."""
    deadline = DEADLINE.get()
    if deadline is None:
        return default
    return max(deadline - asyncio.get_running_loop().time(), 0.0)


class Outage:
    def __init__(self, dependency: str) -> None:
        self.dependency = dependency
        self.since: float | None = None
        self._lock = threading.Lock()

    @property
    def is_on(self) -> bool:
        return self.since is not None

    def failed(self, why: str) -> None:
        """A call failed or timed out: the outage starts, unless it is on already."""
        with self._lock:
            if self.since is not None:
                return
            self.since = time.monotonic()
        log.error(
            "%s is not answering (%s): requests that need it get "
            "SERVICE_UNAVAILABLE until it is back",
            self.dependency,
            why,
        )

    def answered(self) -> None:
        """A call succeeded: the outage, if one was on, is over."""
        if self.since is None:  # the usual case, without taking the lock
            return
        with self._lock:
            since, self.since = self.since, None
        if since is not None:
            log.warning(
                "%s is answering again after %.1f s",
                self.dependency,
                time.monotonic() - since,
            )
