"""Rate limits on guessing: logins, sign-ups, codes, tokens and mail.

Counts live in the `limits` package's storage: in memory by default, in Redis
when USER_SERVICE_REDIS_URL is set, so every worker and host shares them. Every
count is kept per tenant. Failed logins are limited per account with a lock-out
that grows: the configured limit (say 5 per 15 minutes), then twice as many per
four times the window, then four times as many per sixteen times the window.

Every attempt is reserved before it is judged (`hit()` counts and refuses in one
atomic step): of N attempts sent at the same moment, no more are judged than the
limit allows. A success then clears what the account had used: a right password
or code proves what the limit guards. Redis gets a deadline on every call and
fails closed: SERVICE_UNAVAILABLE, never an unlimited guess.
"""

import asyncio
import bisect
import logging
import math
import time
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, TypeVar

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from dependencies import Outage, time_left
from errors import RateLimited, ServiceUnavailable
from metrics import RATE_LIMITED

if TYPE_CHECKING:
    import coredis

T = TypeVar("T")
GROWTH_STEPS = 3
# However many addresses ask, one inbox gets at most this many of our mails...
MAILS_PER_ACCOUNT = "10 per hour"
# ...and one client address may spend only this many of them: whoever floods a
# victim's inbox from one address does not use up the victim's own requests.
MAILS_PER_ACCOUNT_AND_ADDRESS = "3 per hour"
# Seconds Redis may take to connect or answer, when the request allows as much.
REDIS_TIMEOUT = 2.0
# Seconds between two walks that drop expired counts kept in memory.
EXPIRY_INTERVAL = 1.0
log = logging.getLogger("user_service.rate_limits")


def growing(limit: RateLimitItem) -> list[RateLimitItem]:
    """The lock-out tiers: each allows 2x the attempts over 4x the window."""
    return [
        type(limit)(limit.amount * 2**step, limit.multiples * 4**step, limit.namespace)
        for step in range(GROWTH_STEPS)
    ]


class RateLimits:
    def __init__(
        self,
        *,
        storage_url: str | None,
        login_failures_per_account: str,
        login_failures_per_address: str,
        signups_per_address: str,
        guesses_per_address: str = "1000 per 15 minutes",
        code_failures_per_account: str,
        mail_requests_per_address: str = "10 per hour",
    ) -> None:
        # Our own connection pool, so that close() can let go of its sockets.
        self._pool = _redis_pool(storage_url) if storage_url else None
        storage = (
            storage_from_string(_async_url(storage_url), connection_pool=self._pool)  # type: ignore[arg-type]
            if storage_url and self._pool is not None
            else _MemoryStorage()
        )
        self.limiter = MovingWindowRateLimiter(storage)
        self.outage = Outage("Redis")
        self.per_account = growing(parse(login_failures_per_account))
        self.per_address = [parse(login_failures_per_address)]
        self.signups = [parse(signups_per_address)]
        self.token_guesses = [parse(guesses_per_address)]
        self.codes = growing(parse(code_failures_per_account))
        self.mail_requests = [parse(mail_requests_per_address)]
        self.mails_per_account = [parse(MAILS_PER_ACCOUNT)]
        self.mails_per_sender = [parse(MAILS_PER_ACCOUNT_AND_ADDRESS)]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.disconnect()

    async def ping(self) -> None:
        """SERVICE_UNAVAILABLE unless the storage answers: what /readyz asks."""
        await self._guarded(self._check())

    async def _check(self) -> None:
        # The storage's check() answers False rather than raising.
        if not await self.limiter.storage.check():
            raise ConnectionError("no answer to PING")

    async def reserve_login(self, tenant: str, account: str, address: str) -> None:
        """Count a login attempt before any password work; refuse when over."""
        await self._reserve(self.per_address, "login-address", tenant, address)
        await self._reserve(self.per_account, "login", tenant, account)

    async def is_locked(self, tenant: str, account: str) -> bool:
        """Whether the account has used all its attempts: a failure just locked it."""
        return await self._is_full(self.per_account, "login", tenant, account)

    async def unlock(self, tenant: str, account: str) -> None:
        """Forget the account's failed logins: a success, a reset, an ADMIN."""
        await self._clear(self.per_account, "login", tenant, account)

    async def reserve_guess(self, tenant: str, address: str) -> None:
        """Count a presented token (refresh, MFA, mailed link) against the address.

        Every presentation counts, the genuine ones too (a count made before the
        judgement cannot know): hence a limit of its own, far above that of
        failed logins, which refreshing clients behind one address share.
        """
        await self._reserve(self.token_guesses, "guess-address", tenant, address)

    async def reserve_code(self, tenant: str, account: str) -> None:
        """Count an MFA or recovery code before it is checked."""
        await self._reserve(self.codes, "code", tenant, account)

    async def code_succeeded(self, tenant: str, account: str) -> None:
        await self._clear(self.codes, "code", tenant, account)

    async def sign_up(self, tenant: str, address: str) -> None:
        """Count a sign-up attempt; refuse once the address has used its share."""
        await self._reserve(self.signups, "signup", tenant, address)

    async def mail_request(self, tenant: str, address: str) -> None:
        """Count a request that may send mail; refuse once the address is over."""
        await self._reserve(self.mail_requests, "mail-address", tenant, address)

    async def may_mail(self, tenant: str, account: str, address: str) -> bool:
        """Whether this account may get one more mail asked from this address
        (and count it)."""
        return await self._may(
            self.mails_per_sender, "mail-sender", tenant, account, address
        ) and await self._may(self.mails_per_account, "mail", tenant, account)

    async def _reserve(self, items: Sequence[RateLimitItem], *key: str) -> None:
        for item in items:
            if not await self._guarded(self.limiter.hit(item, *key)):
                log.warning("rate limit %s reached in tenant %s", key[0], key[1])
                RATE_LIMITED.labels(key[0]).inc()
                raise RateLimited(await self._retry_after(item, *key))

    async def _may(self, items: Sequence[RateLimitItem], *key: str) -> bool:
        for item in items:
            if not await self._guarded(self.limiter.hit(item, *key)):
                return False
        return True

    async def _is_full(self, items: Sequence[RateLimitItem], *key: str) -> bool:
        for item in items:
            if not await self._guarded(self.limiter.test(item, *key)):
                return True
        return False

    async def _clear(self, items: Sequence[RateLimitItem], *key: str) -> None:
        for item in items:
            await self._guarded(self.limiter.clear(item, *key))

    async def _retry_after(self, item: RateLimitItem, *key: str) -> int:
        stats = await self._guarded(self.limiter.get_window_stats(item, *key))
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def _guarded(self, call: Awaitable[T]) -> T:
        """The storage's answer within the deadline, or SERVICE_UNAVAILABLE."""
        if self._pool is None:
            return await call  # memory: nothing to wait on
        try:
            async with asyncio.timeout(min(REDIS_TIMEOUT, time_left(REDIS_TIMEOUT))):
                result = await call
        except Exception as error:  # Redis refused, dropped or did not answer
            self.outage.failed(type(error).__name__)
            raise ServiceUnavailable() from error
        self.outage.answered()
        return result


class _MemoryStorage(MemoryStorage):
    """limits' memory storage, with expired entries dropped once a second.

    limits starts a walk over every key after every hit, and awaits a thread
    for each key: with a few thousand accounts counted, the walk never stopped
    and took a tenth of the CPU that logins need. Counting never depends on
    the walk (an entry's own time says whether it is in the window); the walk
    only frees memory, so once a second is enough. Done in one go with no
    await, no hit interleaves with it.
    """

    _last_walk = 0.0

    # limits' private method, by its mangled name: it is called on every hit.
    async def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now - self._last_walk >= EXPIRY_INTERVAL:
            self._last_walk = now
            self.drop_expired(time.time())

    def drop_expired(self, now: float) -> None:
        for key, events in list(self.events.items()):
            # Newest first: the entries before `kept` have not expired yet.
            kept = bisect.bisect_left(events, -now, key=lambda entry: -entry.expiry)
            if kept:
                self.events[key] = events[:kept]
            else:
                del self.events[key]
                self.locks.pop(key, None)
        for key, expiry in list(self.expirations.items()):
            if expiry <= now:
                self.storage.pop(key, None)
                del self.expirations[key]
                self.locks.pop(key, None)


def _redis_pool(url: str) -> "coredis.ConnectionPool":
    # Imported here: the Redis client costs ~12 MB per process, for nothing
    # when counts stay in memory.
    import coredis

    # Without these, a frozen Redis holds a request for as long as it is frozen.
    return coredis.ConnectionPool.from_url(
        url, connect_timeout=REDIS_TIMEOUT, stream_timeout=REDIS_TIMEOUT
    )


def _async_url(url: str) -> str:
    return url if url.startswith("async+") else f"async+{url}"
