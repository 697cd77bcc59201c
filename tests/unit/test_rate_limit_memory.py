"""Counts kept in memory: refused while in the window, dropped once expired, by
one walk a second rather than limits' walk after every hit."""

import asyncio

import pytest

from auth.rate_limits import RateLimits
from errors import RateLimited

TENANT = "t"


def limits(per_account: str = "2 per 1 second") -> RateLimits:
    return RateLimits(
        storage_url=None,
        login_failures_per_account=per_account,
        login_failures_per_address="1000000 per hour",
        signups_per_address="10 per hour",
        code_failures_per_account="5 per 15 minutes",
    )


def test_an_account_over_its_limit_is_refused_and_others_are_not() -> None:
    async def attempts() -> None:
        counts = limits("2 per 15 minutes")
        for _ in range(2):
            await counts.reserve_login(TENANT, "a", "10.0.0.1")
        with pytest.raises(RateLimited):
            await counts.reserve_login(TENANT, "a", "10.0.0.1")
        await counts.reserve_login(TENANT, "b", "10.0.0.1")

    asyncio.run(attempts())


def test_expired_counts_are_dropped_by_a_walk_a_second() -> None:
    async def attempts() -> tuple[set[str], object]:
        counts = limits("2 per 1 second")  # tiers: 1 s, then 4 s and 16 s
        for account in ("a", "b"):
            await counts.reserve_login(TENANT, account, "10.0.0.1")
        await asyncio.sleep(1.2)  # past the first tier's window and a walk's second
        await counts.reserve_login(TENANT, "c", "10.0.0.1")  # this hit walks
        storage = counts.limiter.storage
        return set(storage.events), storage.timer  # type: ignore[attr-defined]

    kept, timer = asyncio.run(attempts())
    accounts = {key for key in kept if key.startswith("LIMITER/login/")}
    assert accounts == {
        f"LIMITER/login/{TENANT}/{account}/{tier}"
        for account in ("a", "b", "c")
        for tier in ("2/1/second", "4/4/second", "8/16/second")
        if account == "c" or tier != "2/1/second"
    }
    # limits' own walk (a task after every hit, a thread per key) never started.
    assert timer is None
