"""What one run is made of: its Plan (from the command line), the paths, the
seeded accounts' credentials and the settings every part of the benchmark shares,
the Database of one seeded data set, BenchError and say()."""

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"

PASSWORD = "Bench-login-4821!"  # every seeded account's password
SIGNUP_PASSWORD = "Bench-signup-9377?"
EMAIL = "user{}@bench.example"
BCRYPT_COST = 12
LOGIN_CONNECTIONS_PER_CORE = 2  # keeps the hashing pool busy with a short queue
POSTGRES_URL = os.environ.get(  # the test suite's server (trust auth)
    "USER_SERVICE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
DELAY_MS = 2  # added each way between the service and PostgreSQL


class BenchError(Exception):
    """The harness cannot go on (a server does not start, a check fails)."""


@dataclass(frozen=True)
class Plan:
    """The settings of one run, from its command line."""

    quick: bool
    runs: int
    duration: int  # seconds per measured wrk run
    latency_duration: int  # `me` on PostgreSQL, with and without the delay
    slow_duration: int  # login and signUp (a few requests per second)
    warmup: int
    workers: int
    users: tuple[int, ...]
    postgres: str  # the server to make a database on; "" skips that workload

    @property
    def small(self) -> int:
        return self.users[0]


def make_plan(args: argparse.Namespace) -> Plan:
    """The Plan of bench/run.py's arguments (--quick: one run of a few seconds)."""
    users = sorted({int(n) for n in args.users.split(",") if n.strip()})
    if args.quick:
        users = [min(users)]
    if not users or users[0] < 2:
        raise SystemExit("--users needs counts of at least 2")
    duration = args.duration or (2 if args.quick else 10)
    return Plan(
        quick=args.quick,
        runs=args.runs or (1 if args.quick else 3),
        duration=duration,
        latency_duration=1 if args.quick else duration,
        slow_duration=5 if args.quick else 2 * duration,
        warmup=1 if args.quick else 3,
        workers=args.workers,
        users=tuple(users),
        postgres=args.postgres,
    )


def say(message: str) -> None:
    print(message, flush=True)


@dataclass
class Database:
    """One seeded database; seeding fills in its API key and time, the checks
    its access token."""

    users: int
    url: str
    engine: str = "SQLite"
    api_key: str = ""
    token: str = ""
    seconds: float = 0.0

    @property
    def label(self) -> str:
        return human_count(self.users)

    @property
    def title(self) -> str:
        """Like "1k users", naming the engine when it is not SQLite."""
        where = "" if self.engine == "SQLite" else f" on {self.engine}"
        return f"{self.label} users{where}"


def human_count(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)
