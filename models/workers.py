"""Database work off the event loop: `await run(fn, ...)` calls `fn` in a bounded
pool of threads, each with its own pooled connection, under the request's
deadline.

Peewee is synchronous: a query run on the event loop stalls every request of the
worker while it waits, `/healthz` included, and a frozen PostgreSQL (one that
accepts connections but never answers) would stall it for as long as the freeze
lasts. Here the loop only waits on a future. When the deadline passes, the
caller gets SERVICE_UNAVAILABLE and the connection its thread is stuck on is cut,
so the thread comes back at once and the pool never fills with stuck work.
"""

import asyncio
import contextlib
import functools
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar, cast

from peewee import DatabaseError, SqliteDatabase

from dependencies import Outage, time_left
from errors import ServiceUnavailable
from models.db import (
    close_all_connections,
    close_idle_connections,
    database,
    is_unavailable,
)

P = ParamSpec("P")
T = TypeVar("T")
DEFAULT_THREADS = 8
OUTAGE = Outage("the database")


class _Workers:
    def __init__(self) -> None:
        self.threads = DEFAULT_THREADS
        self.timeout = 5.0
        self.running: set[_Job] = set()
        # Bumped when a connection is found broken: older ones are suspect.
        self.generation = 0
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def configure(self, *, threads: int, timeout: float) -> None:
        self.threads, self.timeout = threads, timeout

    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            with self._lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(
                        self.threads, thread_name_prefix="database"
                    )
        return self._executor

    def stop(self) -> bool:
        """Let the threads go once their work is done, or cut off at the timeout;
        work still queued never runs. True when no call is running any more."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + self.timeout
        while self.running and time.monotonic() < deadline:
            time.sleep(0.01)
        for job in list(self.running):
            job.abort()
        return not self.running


_workers = _Workers()


def start_workers(*, threads: int, timeout: float) -> None:
    _workers.configure(threads=threads, timeout=timeout)


def stop_workers() -> None:
    """Stop the threads, then close every connection, the threads' too (those
    of calls still running past the timeout are left to the process's end)."""
    if _workers.stop():
        close_all_connections()
    else:
        close_idle_connections()


async def run(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Call `fn` in a database thread; SERVICE_UNAVAILABLE past the deadline."""
    loop = asyncio.get_running_loop()
    job = _Job(functools.partial(fn, *args, **kwargs))
    future = loop.run_in_executor(_workers.executor(), job)
    try:
        # On a timeout the future is cancelled: queued work never starts.
        # asyncio.timeout, not wait_for: 3.11's wait_for loses a cancellation
        # of the caller that lands as the work finishes.
        async with asyncio.timeout(time_left(_workers.timeout)):
            return cast(T, await future)
    except TimeoutError:
        job.abort()
        OUTAGE.failed(f"no answer within the deadline: {job.describe()}")
        raise ServiceUnavailable() from None


async def run_read(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Like `run`, for work that only reads. On SQLite it runs here, at once: in
    WAL mode a read never waits on a writer's lock, and a thread's round trip
    costs more than the read itself (about 0.1 ms against a `me` of 0.6 ms)."""
    if not isinstance(database.obj, SqliteDatabase):
        return await run(fn, *args, **kwargs)
    try:
        result = fn(*args, **kwargs)
    except DatabaseError as error:
        if not is_unavailable(error):
            raise
        OUTAGE.failed(type(error).__name__)
        raise ServiceUnavailable() from error
    OUTAGE.answered()
    return result


class _Job:
    """One call in a database thread, on that thread's own connection.

    Each thread keeps its connection from one call to the next (checked out of
    the pool once). A connection found broken is dropped, and so, at their next
    call, are those of the other threads, opened before the outage: a restarted
    server costs one failed request, not one per thread.
    """

    def __init__(self, call: "functools.partial[Any]") -> None:
        self.call = call
        self.started: float | None = None
        self._lock = threading.Lock()
        self._connection: Any = None
        self._aborted = False

    def __call__(self) -> Any:
        self.started = time.monotonic()
        _workers.running.add(self)
        broken = False
        try:
            with self._lock:
                if self._aborted:
                    raise ServiceUnavailable()
            if _thread.generation != _workers.generation:
                _drop_connection()
                _thread.generation = _workers.generation
            self._connection = database.connection()
            result = self.call()
        except DatabaseError as error:
            if not is_unavailable(error):
                raise
            broken = True
            OUTAGE.failed(f"{type(error).__name__}: {self.describe()}")
            raise ServiceUnavailable() from error
        finally:
            self._finish(broken=broken)
        OUTAGE.answered()
        return result

    def describe(self) -> str:
        """Which call, and how long it had run (for the log)."""
        fn = self.call.func
        name = f"{fn.__module__}.{getattr(fn, '__qualname__', fn)}"
        if self.started is None:
            return f"{name} before it started (no database thread was free)"
        return f"{name} after {time.monotonic() - self.started:.1f} s"

    def abort(self) -> None:
        """Cut the connection this job waits on (called from the event loop)."""
        with self._lock:
            self._aborted = True
            if self._connection is not None:
                _cut(self._connection)

    def _finish(self, *, broken: bool) -> None:
        with self._lock:
            broken = broken or self._aborted
            self._connection = None
        if broken:
            _workers.generation += 1
            _drop_connection()
        _workers.running.discard(self)


class _ThreadState(threading.local):
    generation = 0


_thread = _ThreadState()


def _drop_connection() -> None:
    """Close this thread's connection, never back into the pool."""
    db: Any = database.obj
    if db is None or db.is_closed():
        return
    try:
        db.manual_close()
    except Exception:  # a connection that fails to close is dropped all the same
        db._state.reset()


def _cut(connection: Any) -> None:
    """Make a thread blocked on this connection's socket return with an error."""
    pgconn = getattr(connection, "pgconn", None)
    if pgconn is None:  # SQLite: interrupt() is its own way to stop a statement
        with contextlib.suppress(Exception):
            connection.interrupt()
        return
    # shutdown() acts on the socket itself, so a duplicate descriptor serves.
    with (
        contextlib.suppress(Exception),
        socket.socket(fileno=os.dup(pgconn.socket)) as duplicate,
    ):
        duplicate.shutdown(socket.SHUT_RDWR)
