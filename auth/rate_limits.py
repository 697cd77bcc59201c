"""Rate limits on guessing: failed logins, sign-ups, refresh and code attempts.

Counts live in the `limits` package's storage: in memory by default, in Redis
when USER_SERVICE_REDIS_URL is set, so every worker and host shares them. Every
count is kept per tenant. Failed logins are limited per account with a lock-out
that grows: the configured limit (say 5 per 15 minutes), then twice as many per
four times the window, then four times as many per sixteen times the window.
"""

import logging
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from errors import RateLimited, ServiceUnavailable
from metrics import RATE_LIMITED

if TYPE_CHECKING:
    import coredis

GROWTH_STEPS = 3
# However many addresses ask, one inbox gets at most this many of our mails.
MAILS_PER_ACCOUNT = "5 per hour"
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
        code_failures_per_account: str,
        mail_requests_per_address: str = "10 per hour",
    ) -> None:
        # Our own connection pool, so that close() can let go of its sockets.
        self._pool = _redis_pool(storage_url) if storage_url else None
        options = {"connection_pool": self._pool} if self._pool else {}
        storage = storage_from_string(_async_url(storage_url), **options)  # type: ignore[arg-type]
        self.limiter = MovingWindowRateLimiter(storage)
        self.per_account = growing(parse(login_failures_per_account))
        self.per_address = [parse(login_failures_per_address)]
        self.signups = [parse(signups_per_address)]
        self.codes = growing(parse(code_failures_per_account))
        self.mail_requests = [parse(mail_requests_per_address)]
        self.mails_per_account = [parse(MAILS_PER_ACCOUNT)]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.disconnect()

    async def check_login(self, tenant: str, account: str, address: str) -> None:
        """Refuse before any password work while the account or address is locked."""
        await self._check(self.per_account, "login", tenant, account)
        await self._check(self.per_address, "login-address", tenant, address)

    async def login_failed(self, tenant: str, account: str, address: str) -> bool:
        """Count a failed login; True when this failure locks the account."""
        await self._hit(self.per_address, "login-address", tenant, address)
        await self._hit(self.per_account, "login", tenant, account)
        return await self._is_full(self.per_account, "login", tenant, account)

    async def login_succeeded(self, tenant: str, account: str) -> None:
        await self._clear(self.per_account, "login", tenant, account)

    async def check_guess(self, tenant: str, address: str) -> None:
        """Refuse token guesses (refresh tokens) from a locked address."""
        await self._check(self.per_address, "login-address", tenant, address)

    async def guess_failed(self, tenant: str, address: str) -> None:
        await self._hit(self.per_address, "login-address", tenant, address)

    async def sign_up(self, tenant: str, address: str) -> None:
        """Count a sign-up attempt; refuse once the address has used its share."""
        await self._check(self.signups, "signup", tenant, address)
        await self._hit(self.signups, "signup", tenant, address)

    async def mail_request(self, tenant: str, address: str) -> None:
        """Count a request that may send mail; refuse once the address is over."""
        await self._check(self.mail_requests, "mail-address", tenant, address)
        await self._hit(self.mail_requests, "mail-address", tenant, address)

    async def may_mail(self, tenant: str, account: str) -> bool:
        """Whether this account may get one more mail now (and count it)."""
        if await self._is_full(self.mails_per_account, "mail", tenant, account):
            return False
        await self._hit(self.mails_per_account, "mail", tenant, account)
        return True

    async def check_codes(self, tenant: str, account: str) -> None:
        await self._check(self.codes, "code", tenant, account)

    async def code_failed(self, tenant: str, account: str) -> bool:
        await self._hit(self.codes, "code", tenant, account)
        return await self._is_full(self.codes, "code", tenant, account)

    async def _check(self, items: Sequence[RateLimitItem], *key: str) -> None:
        try:
            for item in items:
                if not await self.limiter.test(item, *key):
                    log.warning("rate limit %s reached in tenant %s", key[0], key[1])
                    RATE_LIMITED.labels(key[0]).inc()
                    raise RateLimited(await self._retry_after(item, *key))
        except RateLimited:
            raise
        except Exception as error:  # the storage (Redis) does not answer
            raise ServiceUnavailable() from error

    async def _hit(self, items: Sequence[RateLimitItem], *key: str) -> None:
        try:
            for item in items:
                await self.limiter.hit(item, *key)
        except Exception as error:
            raise ServiceUnavailable() from error

    async def _is_full(self, items: Sequence[RateLimitItem], *key: str) -> bool:
        try:
            return not all([await self.limiter.test(item, *key) for item in items])
        except Exception as error:
            raise ServiceUnavailable() from error

    async def _clear(self, items: Sequence[RateLimitItem], *key: str) -> None:
        try:
            for item in items:
                await self.limiter.clear(item, *key)
        except Exception as error:
            raise ServiceUnavailable() from error

    async def _retry_after(self, item: RateLimitItem, *key: str) -> int:
        stats = await self.limiter.get_window_stats(item, *key)
        return max(1, math.ceil(stats.reset_time - time.time()))


def _redis_pool(url: str) -> "coredis.ConnectionPool":
    # Imported here: the Redis client costs ~12 MB per process, for nothing
    # when counts stay in memory.
    import coredis

    return coredis.ConnectionPool.from_url(url)


def _async_url(url: str | None) -> str:
    if not url:
        return "async+memory://"
    return url if url.startswith("async+") else f"async+{url}"
