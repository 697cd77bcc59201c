"""The benchmark: the service against its own ceiling (bench/baseline.py), same run.

    .venv/bin/python bench/run.py [--quick] [--workers N] [--users 1000,1000000]

Seeds SQLite databases (bulk inserts, one pre-computed bcrypt hash), starts the
service in production mode and the baseline as uvicorn subprocesses, checks
their answers once, then drives them with wrk (Lua scripts in bench/lua/):
`me` at 1 and 32 connections, `updateProfile`, `signUp`, `login`, `me` while
logins saturate the CPU, 2 workers against 1, `me` at every user count, and
`me` on PostgreSQL, directly and through bench/delay_proxy.py (2 ms each way).
Medians of several runs; ratios are taken pair by pair (runs interleaved).
Writes bench/RESULTS.md (--quick: bench/results/quick.md). Exits non-zero when
a check or any wrk run fails (socket errors, non-2xx answers, GraphQL errors in
the service's request log); missing a speed target is reported, not an error.
"""

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import re
import resource
import secrets
import shlex
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
LUA = BENCH / "lua"
sys.path.insert(0, str(ROOT))

PASSWORD = "Bench-login-4821!"  # every seeded account's password
SIGNUP_PASSWORD = "Bench-signup-9377?"
EMAIL = "user{}@bench.example"
BCRYPT_COST = 12
LOGIN_CONNECTIONS_PER_CORE = 2  # keeps the hashing pool busy with a short queue
MAX_RSS_MB = 80
POSTGRES_URL = os.environ.get(  # the test suite's server (trust auth)
    "USER_SERVICE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
DELAY_MS = 2  # added each way between the service and PostgreSQL
MIN_LATENCY_RATIO = 0.8
HUGE_LIMIT = "1000000000 per hour"  # rate limits that never throttle the benchmark
PACKAGES = [
    "strawberry-graphql",
    "graphql-core",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "peewee",
    "PyJWT",
    "bcrypt",
    "limits",
]
ME_QUERY = (
    "{ me { id email role city organization designation mobile createdAt updatedAt } }"
)


class BenchError(Exception):
    """The harness cannot go on (a server does not start, a check fails)."""


# ---- settings of one run ----------------------------------------------------------


@dataclass(frozen=True)
class Plan:
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="~2 s per workload, 1 run")
    parser.add_argument("--workers", type=int, default=1, help="service workers")
    parser.add_argument("--users", default="1000,1000000", help="user counts")
    parser.add_argument("--runs", type=int, help="runs per workload (3; quick 1)")
    parser.add_argument("--duration", type=int, help="seconds per run (10; quick 2)")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument(
        "--postgres",
        default=POSTGRES_URL,
        help="PostgreSQL server for the latency workload ('' skips it)",
    )
    return parser.parse_args(argv)


def make_plan(args: argparse.Namespace) -> Plan:
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


# ---- set-up -----------------------------------------------------------------------


def say(message: str) -> None:
    print(message, flush=True)


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    say("wrk is not installed: installing it with apt-get (Debian package 'wrk')")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "wrk"]):
        done = subprocess.run([*sudo, *command], env=env, check=False)
        if done.returncode != 0:
            raise BenchError(f"'{' '.join(command)}' failed; install wrk by hand")
    if not shutil.which("wrk"):
        raise BenchError("wrk is still missing after apt-get install")


@dataclass
class Database:
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


def seed(database: Database, password_hash: str) -> None:
    """Migrate, add tenant 'bench' with a key, and bulk-insert the users.

    One bcrypt hash serves every account; inserts go in batches through Peewee's
    insert_many, inside transactions, with synchronous=OFF on this connection
    (SQLite).
    """
    from auth.api_keys import new_api_key, shown_prefix
    from auth.opaque import digest
    from models import ApiKey, Tenant, User
    from models.db import close_idle_connections, migrate, open_database
    from models.db import database as proxy

    started = time.perf_counter()
    open_database(database.url)
    sqlite = database.engine == "SQLite"
    try:
        migrate()
        db = proxy.obj
        if sqlite:
            db.execute_sql("PRAGMA synchronous=OFF")  # seeding only: this connection
            db.execute_sql("PRAGMA cache_size=-262144")
        tenant = Tenant.add("bench")
        database.api_key = new_api_key()
        ApiKey.create(
            tenant=tenant,
            digest=digest(database.api_key),
            prefix=shown_prefix(database.api_key),
        )
        fields = [
            User.id,
            User.tenant,
            User.email,
            User.email_key,
            User.password_hash,
            User.role,
            User.created_at,
            User.updated_at,
        ]
        now = datetime.now(UTC).replace(tzinfo=None)
        tenant_id = tenant.id.hex

        def rows(first: int, stop: int) -> list[tuple[Any, ...]]:
            return [
                (uuid4().hex, tenant_id, e, e, password_hash, "USER", now, now)
                for e in (EMAIL.format(i) for i in range(first, stop))
            ]

        # SQLite allows 32766 bound values per statement; defaults add columns.
        batch = max(1, 30000 // len(User._meta.sorted_fields))
        per_transaction = batch * 40
        for start in range(0, database.users, per_transaction):
            stop = min(start + per_transaction, database.users)
            with db.atomic():
                bulk_insert(User, fields, rows, start, stop, batch)
        if sqlite:
            db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            db.execute_sql("PRAGMA synchronous=NORMAL")
        else:
            db.execute_sql("ANALYZE")  # plans from statistics, not from autovacuum
    finally:
        close_idle_connections()
    database.seconds = time.perf_counter() - started


def bulk_insert(
    model: Any,
    fields: list[Any],
    rows: Callable[[int, int], list[tuple[Any, ...]]],
    start: int,
    stop: int,
    batch: int,
) -> None:
    """Insert rows start..stop in batches with Peewee's insert_many.

    Peewee builds the statement of the first full batch (columns, defaults,
    placeholders); later full batches reuse its text with their own values,
    converted by the same fields' db_value. That is what insert_many does, minus
    rebuilding a SQL node per value (twice as fast for a million rows). When the
    values would differ from Peewee's own (a callable default), every batch
    goes through insert_many as is.
    """
    template: str | None = None
    flatten: Callable[[list[tuple[Any, ...]]], list[Any]] | None = None
    for first in range(start, stop, batch):
        chunk = rows(first, min(first + batch, stop))
        if template is not None and flatten is not None and len(chunk) == batch:
            model._meta.database.execute_sql(template, flatten(chunk))
            continue
        query = model.insert_many(chunk, fields=fields)
        if template is None and len(chunk) == batch:
            sql, params = query.sql()
            candidate = flattener(model, fields, sql)
            if candidate is not None and candidate(chunk) == list(params):
                template, flatten = sql, candidate
        query.execute()


def flattener(
    model: Any, fields: list[Any], sql: str
) -> Callable[[list[tuple[Any, ...]]], list[Any]] | None:
    """The parameters Peewee binds for rows, in the statement's column order."""
    match = re.match(r'INSERT INTO "?\w+"? \((.*?)\) VALUES', sql)
    if match is None:
        return None
    by_column = {f.column_name: f for f in model._meta.sorted_fields}
    given = {f.column_name: i for i, f in enumerate(fields)}
    plan: list[tuple[int | None, Callable[[Any], Any], Any]] = []
    for name in (c.strip().strip('"') for c in match.group(1).split(",")):
        field = by_column.get(name)
        if field is None:
            return None
        if name in given:
            plan.append((given[name], field.db_value, None))
        elif field in model._meta.defaults:
            default = model._meta.defaults[field]
            if callable(default):
                return None
            plan.append((None, field.db_value, default))
        elif field.null:
            plan.append((None, field.db_value, None))
        else:
            return None

    def flatten(chunk: list[tuple[Any, ...]]) -> list[Any]:
        values: list[Any] = []
        for row in chunk:
            values.extend(
                convert(row[i] if i is not None else default)
                for i, convert, default in plan
            )
        return values

    return flatten


def bcrypt_seconds(password_hash: str, samples: int) -> list[float]:
    """Time one bcrypt check at the configured cost, in this process."""
    from auth.passwords import password_matches

    times = []
    for _ in range(samples):
        started = time.perf_counter()
        if not password_matches(PASSWORD, password_hash):
            raise BenchError("the pre-computed hash does not match its password")
        times.append(time.perf_counter() - started)
    return times


@contextlib.contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """The URL of a new database on the PostgreSQL server at `server_url`, which
    is dropped at the end (with its connections)."""
    import psycopg
    from psycopg import sql

    name = f"bench_{secrets.token_hex(6)}"

    def execute(statement: sql.SQL) -> None:
        with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as admin:
            admin.execute(statement.format(sql.Identifier(name)))

    try:
        execute(sql.SQL("CREATE DATABASE {}"))
    except psycopg.Error as error:
        raise BenchError(f"cannot make a database at {server_url}: {error}") from None
    try:
        yield urllib.parse.urlsplit(server_url)._replace(path=f"/{name}").geturl()
    finally:
        try:
            execute(sql.SQL("DROP DATABASE {} WITH (FORCE)"))
        except psycopg.Error as error:
            say(f"could not drop the database {name}: {error}")


# ---- servers ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DelayProxy:
    """bench/delay_proxy.py in its own process, in front of one database server."""

    def __init__(self, delay_ms: int, log_path: Path) -> None:
        self.delay_ms = delay_ms
        self.log_path = log_path
        self.process: subprocess.Popen[str] | None = None

    def start(self, url: str) -> str:
        """Start it in front of the server of `url`; the same URL through it."""
        parts = urllib.parse.urlsplit(url)
        target = f"{parts.hostname or '127.0.0.1'}:{parts.port or 5432}"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    str(BENCH / "delay_proxy.py"),
                    "--listen-port=0",
                    f"--target={target}",
                    f"--delay-ms={self.delay_ms}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                start_new_session=True,
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # "listening on HOST:PORT"
        match = re.search(r":(\d+)$", line.strip())
        if match is None:
            raise BenchError(f"the delay proxy did not start: {line!r}")
        user, _, _ = parts.netloc.rpartition("@")
        netloc = (f"{user}@" if user else "") + f"127.0.0.1:{match.group(1)}"
        return parts._replace(netloc=netloc).geturl()

    def cpu_seconds(self) -> float:
        if self.process is None:
            return 0.0
        return process_ticks(self.process.pid) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class Server:
    kind: str  # "service" or "baseline"
    database: Database
    workers: int
    env: dict[str, str]
    log_dir: Path
    queries: str = "model"  # the baseline's way to read: "model" or "sql"
    delay_ms: int = 0  # added each way to the database by a DelayProxy
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    proxy: DelayProxy | None = None
    rss_kb: dict[int, int] = field(default_factory=dict)  # worker pid -> max VmRSS

    @property
    def name(self) -> str:
        workers = f"{self.workers} worker" + ("s" if self.workers > 1 else "")
        kind = self.kind + (", hand-written SQL" if self.queries == "sql" else "")
        delay = f", {self.delay_ms} ms each way" if self.delay_ms else ""
        return f"{kind} ({self.database.title}{delay}, {workers})"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    @property
    def log_path(self) -> Path:
        name = f"{self.kind}-{self.queries}-{self.database.label}-w{self.workers}"
        if self.database.engine != "SQLite":
            name += f"-{self.database.engine.lower()}-delay{self.delay_ms}"
        return self.log_dir / f"{name}.log"

    def start(self) -> None:
        self.port = free_port()
        if self.delay_ms:
            self.proxy = DelayProxy(self.delay_ms, self.log_path.with_suffix(".proxy"))
            url = self.proxy.start(self.database.url)
            self.env = {**self.env, "USER_SERVICE_DATABASE_URL": url}
        if self.kind == "service":
            script = [str(ROOT / "server.py")]
        else:
            script = [str(BENCH / "baseline.py"), "--queries", self.queries]
        command = [
            sys.executable,
            *script,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]
        if self.workers > 1:
            # What server.py does for metrics shared by workers, inside data_dir.
            metrics = self.log_dir / f"metrics-{self.log_path.stem}"
            metrics.mkdir(exist_ok=True)
            self.env = {**self.env, "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends it all
        )
        log.close()

    def wait_ready(self, timeout: float = 90.0) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        health = f"http://127.0.0.1:{self.port}/healthz"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"{self.name} exited:\n{self.log_tail()}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(health, timeout=2) as response,
            ):
                if response.status == 200 and self.ready_workers():
                    return
            time.sleep(0.2)
        raise BenchError(f"{self.name} did not start:\n{self.log_tail()}")

    def ready_workers(self) -> bool:
        return len(self.worker_pids()) >= self.workers

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: the server itself with one
        worker, else uvicorn's spawned workers (not its supervisor)."""
        if self.process is None or self.process.poll() is not None:
            return []
        if self.workers == 1:
            return [self.process.pid]
        return [
            pid
            for pid in children(self.process.pid)
            if "spawn_main" in cmdline(pid) and "resource_tracker" not in cmdline(pid)
        ]

    def sample_rss(self) -> None:
        for pid in self.worker_pids():
            kb = vm_rss_kb(pid)
            if kb:
                self.rss_kb[pid] = max(self.rss_kb.get(pid, 0), kb)

    @property
    def max_rss_mb(self) -> float:
        return max(self.rss_kb.values(), default=0) / 1024

    def stop(self) -> None:
        try:
            self.stop_process()
        finally:
            if self.proxy is not None:
                self.proxy.stop()

    def stop_process(self) -> None:
        if self.process is None:
            return
        process, self.process = self.process, None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        # Workers of a killed supervisor are in its group too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: split after it.
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def cmdline(pid: int) -> str:
    try:
        return (
            (Path("/proc") / str(pid) / "cmdline").read_bytes().decode(errors="replace")
        )
    except OSError:
        return ""


def vm_rss_kb(pid: int) -> int:
    try:
        for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@contextlib.contextmanager
def sampling(servers: list[Server], every: float = 0.2) -> Iterator[None]:
    """Sample the RSS of these servers' workers while the block runs."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            for server in servers:
                server.sample_rss()
            stop.wait(every)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class CpuMeter:
    """CPU used by processes outside the benchmark while the block runs, in
    cores: all busy time (/proc/stat) minus the servers' (and their delay
    proxies'), this process's and its finished children's (wrk)."""

    def __init__(self, servers: list[Server]) -> None:
        self.servers = servers
        self.other_cores = 0.0

    def snapshot(self) -> tuple[float, float, float]:
        ticks = os.sysconf("SC_CLK_TCK")
        busy = 0.0
        with contextlib.suppress(OSError, ValueError, IndexError):
            values = [int(v) for v in Path("/proc/stat").read_text().split()[1:9]]
            busy = (sum(values) - values[3] - values[4]) / ticks  # minus idle, iowait
        pids = [os.getpid()]
        for server in self.servers:
            if server.process is not None:
                pids += [server.process.pid, *children(server.process.pid)]
            if server.proxy is not None and server.proxy.process is not None:
                pids.append(server.proxy.process.pid)
        mine = sum(process_ticks(pid) for pid in pids) / ticks
        waited = resource.getrusage(resource.RUSAGE_CHILDREN)
        mine += waited.ru_utime + waited.ru_stime
        return time.monotonic(), busy, mine

    def __enter__(self) -> "CpuMeter":
        self.start = self.snapshot()
        return self

    def __exit__(self, *_: object) -> None:
        end = self.snapshot()
        elapsed = end[0] - self.start[0]
        other = (end[1] - self.start[1]) - (end[2] - self.start[2])
        self.other_cores = max(0.0, other / elapsed) if elapsed > 0 else 0.0


def process_ticks(pid: int) -> int:
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return 0
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # utime + stime, all threads


def server_env(database: Database, data_dir: Path, data_key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("USER_SERVICE_")}
    env.update(
        {
            "USER_SERVICE_ENV": "production",
            "USER_SERVICE_DATABASE_URL": database.url,
            "USER_SERVICE_DATA_DIR": str(data_dir),
            "USER_SERVICE_DATA_KEY": data_key,
            "USER_SERVICE_BCRYPT_COST": str(BCRYPT_COST),
            # One token serves the whole run (a long run outlives 15 minutes).
            "USER_SERVICE_ACCESS_TOKEN_TTL": "7200",
            "USER_SERVICE_LOGIN_FAILURES_PER_ADDRESS": HUGE_LIMIT,
            "USER_SERVICE_SIGNUPS_PER_ADDRESS": HUGE_LIMIT,
        }
    )
    return env


# ---- correctness, once, before loading --------------------------------------------


def post(
    server: Server,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    token: str | None = None,
) -> tuple[int, dict[str, Any]]:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    headers = {
        "Content-Type": "application/json",
        "X-API-Key": server.database.api_key,
    }
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(server.url, data=body, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def expect_data(server: Server, what: str, answer: tuple[int, dict[str, Any]]) -> Any:
    status, body = answer
    if status != 200 or body.get("errors") or not body.get("data"):
        raise BenchError(f"{what} on {server.name}: HTTP {status} {json.dumps(body)}")
    return body["data"]


LOGIN = (
    "mutation($e: String!, $p: String!) "
    "{ login(email: $e, password: $p) { accessToken expiresIn } }"
)


def log_in(server: Server, index: int = 0) -> str:
    data = expect_data(
        server,
        "login",
        post(server, LOGIN, {"e": EMAIL.format(index), "p": PASSWORD}),
    )
    return str(data["login"]["accessToken"])


def check_me(server: Server) -> dict[str, Any]:
    data = expect_data(
        server, "me", post(server, ME_QUERY, token=server.database.token)
    )
    me = data["me"]
    if me.get("email") != EMAIL.format(0):
        raise BenchError(f"me on {server.name} answered {me}")
    return dict(me)


def check_writes(server: Server) -> None:
    update = "mutation($i: UpdateProfileInput!) { updateProfile(input: $i) { city } }"
    data = expect_data(
        server,
        "updateProfile",
        post(
            server,
            update,
            {"i": {"email": EMAIL.format(0), "city": "Oslo"}},
            token=server.database.token,
        ),
    )
    if data["updateProfile"]["city"] != "Oslo":
        raise BenchError(f"updateProfile did not change the city: {data}")
    sign_up = "mutation($i: SignUpInput!) { signUp(input: $i) { id email } }"
    email = f"check-{int(time.time())}@bench.example"
    expect_data(
        server,
        "signUp",
        post(server, sign_up, {"i": {"email": email, "password": SIGNUP_PASSWORD}}),
    )
    log_in(server, 1)


# ---- wrk --------------------------------------------------------------------------


@dataclass
class Run:
    label: str
    connections: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]
    other_cores: float = 0.0  # CPU used by processes outside the bench meanwhile
    proxy_cores: float = 0.0  # CPU used by the server's delay proxy meanwhile

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


class Harness:
    def __init__(self, plan: Plan, servers: list[Server]) -> None:
        self.plan = plan
        self.servers = servers
        self.failures: list[str] = []
        self.unique = 0
        self.running: set[subprocess.Popen[bytes]] = set()

    def stop_wrk(self) -> None:
        for process in list(self.running):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        self.running.clear()

    def wrk_command(
        self,
        server: Server,
        script: str,
        connections: int,
        seconds: int,
        args: list[str],
    ) -> list[str]:
        timeout = 60 if script in ("login.lua", "sign_up.lua") else 10
        command = [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            f"--timeout={timeout}s",
            "-s",
            str(LUA / script),
            server.url,
        ]
        return [*command, "--", *args] if args else command

    def wrk_env(self, server: Server) -> dict[str, str]:
        return {
            **os.environ,
            "BENCH_LUA_DIR": str(LUA),
            "BENCH_API_KEY": server.database.api_key,
            "BENCH_TOKEN": server.database.token,
            "BENCH_PASSWORD": PASSWORD,
            "BENCH_SIGNUP_PASSWORD": SIGNUP_PASSWORD,
        }

    def script_args(self, server: Server, script: str) -> list[str]:
        if script == "sign_up.lua":
            self.unique += 1
            return [f"{os.getpid()}x{int(time.time())}x{self.unique}"]
        if script == "login.lua":
            return [str(server.database.users)]
        if script == "update_profile.lua":
            return [EMAIL.format(0)]
        return []

    def start_wrk(
        self,
        label: str,
        server: Server,
        script: str,
        connections: int,
        seconds: int,
        warm: bool = False,
    ) -> Callable[[], Run]:
        """Start wrk; the returned function waits for it and reads its result."""
        args = self.script_args(server, script)
        command = self.wrk_command(server, script, connections, seconds, args)
        process = subprocess.Popen(
            command,
            env=self.wrk_env(server),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.running.add(process)

        def finish() -> Run:
            try:
                output, _ = process.communicate(timeout=seconds + 120)
            finally:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
                self.running.discard(process)
            text = output.decode(errors="replace")
            return self.read_result(label, connections, text, warm=warm)

        return finish

    def wrk(
        self,
        label: str,
        server: Server,
        script: str,
        connections: int,
        seconds: int,
        *,
        warm: bool = False,
    ) -> Run:
        proxy_cpu = server.proxy.cpu_seconds() if server.proxy else 0.0
        with sampling([server]), CpuMeter(self.servers) as meter:
            finish = self.start_wrk(label, server, script, connections, seconds, warm)
            run = finish()
        run.other_cores = meter.other_cores
        if server.proxy and run.seconds:
            run.proxy_cores = (server.proxy.cpu_seconds() - proxy_cpu) / run.seconds
        self.show(run)
        return run

    def read_result(
        self, label: str, connections: int, output: str, *, warm: bool = False
    ) -> Run:
        match = re.search(r"^BENCHJSON (\{.*\})$", output, re.MULTILINE)
        if match is None:
            self.failures.append(f"{label}: wrk gave no result:\n{output[-2000:]}")
            say(f"  FAILED {label}: wrk gave no result:\n{output[-2000:]}")
            return Run(label, connections, 0, 0.0, 0.0, 0.0, {"wrk": 1})
        raw = json.loads(match.group(1))
        errors = {
            name: int(raw[name])
            for name in ("connect", "read", "write", "timeout", "status")
            if raw[name]
        }
        run = Run(
            label=label,
            connections=connections,
            requests=int(raw["requests"]),
            seconds=raw["duration_us"] / 1e6,
            p50_ms=raw["p50_us"] / 1000,
            p99_ms=raw["p99_us"] / 1000,
            errors=errors,
        )
        if errors or (run.requests == 0 and not warm):
            problem = ", ".join(f"{k} {v}" for k, v in errors.items()) or "no requests"
            self.failures.append(f"{label}: {problem} (socket errors / non-2xx)")
            say(f"  FAILED {label}: {problem}")
        return run

    @staticmethod
    def show(run: Run) -> None:
        say(
            f"  {run.label:<42} {run.rps:8.1f} req/s  p50 {run.p50_ms:8.2f} ms"
            f"  p99 {run.p99_ms:8.2f} ms  other CPU {run.other_cores:.2f}"
            + (f"  proxy CPU {run.proxy_cores:.2f}" if run.proxy_cores else "")
        )

    def rounds(
        self, title: str, items: list[tuple[str, Server, str, int]], seconds: int
    ) -> dict[str, list[Run]]:
        """Warm each item up, then run them in turn, `runs` times (interleaved,
        so that pairs of items can be compared run by run)."""
        say(f"\n== {title}")
        for label, server, script, connections in items:
            self.warm_up(label, server, script, connections)
        results: dict[str, list[Run]] = {label: [] for label, *_ in items}
        for number in range(self.plan.runs):
            for label, server, script, connections in items:
                run = self.wrk(
                    f"{label} #{number + 1}", server, script, connections, seconds
                )
                results[label].append(run)
        return results

    def warm_up(
        self, label: str, server: Server, script: str, connections: int
    ) -> None:
        # A login takes ~0.3 s of CPU and queues behind others: give it time.
        slow = script in ("login.lua", "sign_up.lua")
        seconds = max(self.plan.warmup, 3) if slow else self.plan.warmup
        self.wrk(f"warm-up {label}", server, script, connections, seconds, warm=True)

    def under_login(
        self, server: Server, me_connections: list[int]
    ) -> dict[str, list[Run]]:
        """`me` idle, then `me` while a parallel wrk keeps the hashing pool full."""
        cores = os.cpu_count() or 1
        login_connections = LOGIN_CONNECTIONS_PER_CORE * cores
        seconds = self.plan.duration
        lead = 1 if self.plan.quick else 2
        say(f"\n== me while logins saturate the CPU ({login_connections} login conns)")
        self.warm_up("login", server, "login.lua", login_connections)
        results: dict[str, list[Run]] = {}
        for number in range(self.plan.runs):
            for connections in me_connections:
                idle = self.wrk(
                    f"me idle c{connections} #{number + 1}",
                    server,
                    "me.lua",
                    connections,
                    seconds,
                )
                results.setdefault(f"idle c{connections}", []).append(idle)
                with sampling([server]):
                    finish_login = self.start_wrk(
                        f"login (parallel) c{login_connections} #{number + 1}",
                        server,
                        "login.lua",
                        login_connections,
                        seconds + 2 * lead,
                    )
                    time.sleep(lead)
                    loaded = self.wrk(
                        f"me under login c{connections} #{number + 1}",
                        server,
                        "me.lua",
                        connections,
                        seconds,
                    )
                    login = finish_login()
                    login.other_cores = loaded.other_cores
                    self.show(login)
                results.setdefault(f"loaded c{connections}", []).append(loaded)
                results.setdefault(f"login c{connections}", []).append(login)
        return results


# ---- figures ----------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def pair_ratio(
    top: list[Run], bottom: list[Run], value: Callable[[Run], float]
) -> float:
    ratios = [
        value(a) / value(b) for a, b in zip(top, bottom, strict=False) if value(b)
    ]
    return median(ratios)


@dataclass
class Figure:
    workload: str
    server: str
    connections: int
    runs: list[Run]

    @property
    def rps(self) -> float:
        return median([r.rps for r in self.runs])

    @property
    def p50(self) -> float:
        return median([r.p50_ms for r in self.runs])

    @property
    def p99(self) -> float:
        return median([r.p99_ms for r in self.runs])


@dataclass
class Ratio:
    name: str
    value: float
    target: str
    passed: bool | None  # None: information, no target
    detail: str


def check(value: float, op: str, bound: float) -> bool:
    if value != value:  # NaN: not measured
        return False
    return value >= bound if op == ">=" else value <= bound


def med(runs: list[Run], attribute: str) -> float:
    return median([getattr(run, attribute) for run in runs])


def ratio_to_baseline(service: list[Run], baseline: list[Run], workers: int) -> Ratio:
    value = pair_ratio(service, baseline, lambda r: r.rps)
    plural = "s" if workers > 1 else ""
    return Ratio(
        f"`me` req/s ÷ baseline req/s ({workers} worker{plural}, 32 conns)",
        value,
        "≥ 0.7",
        check(value, ">=", 0.7),
        f"service {fmt(med(service, 'rps'))} req/s, baseline "
        f"{fmt(med(baseline, 'rps'))} req/s; median of the per-run ratios.",
    )


def sql_ceiling_ratio(service: list[Run], baseline: list[Run]) -> Ratio:
    value = pair_ratio(service, baseline, lambda r: r.rps)
    return Ratio(
        "`me` req/s ÷ hand-written-SQL baseline req/s (32 conns)",
        value,
        "none (information)",
        None,
        f"service {fmt(med(service, 'rps'))} req/s, baseline with hand-written SQL "
        f"{fmt(med(baseline, 'rps'))} req/s: the ceiling if the service's "
        "queries skip Peewee's query builder (the target above is against "
        "model queries, as the issue's prototypes were).",
    )


def login_ratio(
    logins: list[Run], bcrypt: list[float], cores: int, connections: int
) -> Ratio:
    limit = cores / median(bcrypt)
    value = med(logins, "rps") / limit
    return Ratio(
        "`login`/s ÷ bcrypt limit",
        value,
        "≥ 0.9",
        check(value, ">=", 0.9),
        f"{fmt(med(logins, 'rps'), 2)} logins/s ({connections} conns) ÷ "
        f"{fmt(limit, 2)} (= {cores} cores ÷ {median(bcrypt) * 1000:.0f} ms "
        "per check).",
    )


def under_login_ratio(loaded: dict[str, list[Run]], connections: int) -> Ratio:
    value = pair_ratio(loaded["loaded c32"], loaded["idle c32"], lambda r: r.p99_ms)
    one = pair_ratio(loaded["loaded c1"], loaded["idle c1"], lambda r: r.p99_ms)
    return Ratio(
        "`me` p99 under login load ÷ idle p99 (32 conns)",
        value,
        "≤ 5",
        check(value, "<=", 5),
        f"idle p99 {fmt(med(loaded['idle c32'], 'p99_ms'), 2)} ms, under load "
        f"{fmt(med(loaded['loaded c32'], 'p99_ms'), 2)} ms, with {connections} login "
        "conns in parallel; each loaded run is paired with the idle run just "
        f"before it. At 1 conn: {fmt(one, 2)} "
        f"({fmt(med(loaded['idle c1'], 'p99_ms'), 2)} → "
        f"{fmt(med(loaded['loaded c1'], 'p99_ms'), 2)} ms).",
    )


def size_ratio(
    c1: dict[str, list[Run]], c32: dict[str, list[Run]], big: str, small: str
) -> Ratio:
    def p50(table: dict[str, list[Run]], top: str, bottom: str) -> float:
        return pair_ratio(table[top], table[bottom], lambda r: r.p50_ms)

    value = p50(c1, f"me service {big} c1", "me service c1")
    return Ratio(
        f"`me` p50 at {big} users ÷ at {small} (1 conn)",
        value,
        "≤ 1.15",
        check(value, "<=", 1.15),
        f"p50 {fmt(med(c1[f'me service {big} c1'], 'p50_ms'), 3)} ms vs "
        f"{fmt(med(c1['me service c1'], 'p50_ms'), 3)} ms; at 32 conns "
        f"{fmt(p50(c32, f'me service {big} c32', 'me service c32'), 2)}; the "
        "baseline's own ratio "
        f"{fmt(p50(c1, f'me baseline {big} c1', 'me baseline c1'), 2)}.",
    )


def workers_ratio(runs: dict[tuple[str, int], list[Run]], cores: int) -> Ratio:
    def scaling(kind: str) -> float:
        return pair_ratio(runs[(kind, 2)], runs[(kind, 1)], lambda r: r.rps)

    value = scaling("service")
    return Ratio(
        "2 workers ÷ 1 worker, `me` req/s (32 conns)",
        value,
        "≥ 1.6",
        check(value, ">=", 1.6),
        f"{fmt(med(runs[('service', 2)], 'rps'))} vs "
        f"{fmt(med(runs[('service', 1)], 'rps'))} req/s; the baseline's own ratio "
        f"{fmt(scaling('baseline'), 2)}. wrk shares the {cores} cores with the "
        "workers.",
    )


def latency_ratio(direct: list[Run], delayed: list[Run], threads: int) -> Ratio:
    value = pair_ratio(delayed, direct, lambda r: r.rps)
    return Ratio(
        f"`me` on PostgreSQL with {DELAY_MS} ms each way ÷ without "
        "(1 worker, 32 conns)",
        value,
        f"≥ {MIN_LATENCY_RATIO}",
        check(value, ">=", MIN_LATENCY_RATIO),
        f"{fmt(med(delayed, 'rps'))} vs {fmt(med(direct, 'rps'))} req/s, p99 "
        f"{fmt(med(delayed, 'p99_ms'), 2)} vs {fmt(med(direct, 'p99_ms'), 2)} ms; "
        f"{threads} database threads; the delay proxy (bench/delay_proxy.py, "
        f"its own process on the same cores) used "
        f"{fmt(med(delayed, 'proxy_cores'), 2)} cores.",
    )


# ---- the report -------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    wrk_version = (wrk.stdout + wrk.stderr).strip().splitlines()[0:1]
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "memory": memory,
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "SQLite": sqlite3.sqlite_version,
        "wrk": wrk_version[0] if wrk_version else "unknown",
        "packages": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "commit": (commit or "unknown")
        + (" (with uncommitted changes)" if dirty else ""),
    }


def command_line(argv: list[str]) -> str:
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(ROOT)
    return shlex.join([str(python), "bench/run.py", *argv])


def fmt(value: float, digits: int = 1) -> str:
    return "n/a" if value != value else f"{value:,.{digits}f}"


def render(
    *,
    plan: Plan,
    argv: list[str],
    info: dict[str, str],
    started: datetime,
    elapsed: float,
    figures: list[Figure],
    ratios: list[Ratio],
    servers: list[Server],
    bcrypt: list[float],
    databases: list[Database],
    notes: list[str],
    failures: list[str],
) -> str:
    title = "Benchmark results" + (
        " (quick mode: proves the harness, not speed)" if plan.quick else ""
    )
    lines = [f"# {title}", ""]
    lines += [
        f"Run {started:%Y-%m-%d %H:%M} UTC, {elapsed / 60:.1f} minutes. "
        "Command (from the repository root):",
        "",
        "```sh",
        command_line(argv),
        "```",
        "",
        "## Machine and versions",
        "",
        "| | |",
        "| --- | --- |",
    ]
    lines += [f"| {k} | {v} |" for k, v in info.items()]
    lines += [
        "",
        "## Method",
        "",
        f"- Load: wrk, 1 thread, on loopback; {plan.warmup} s warm-up per workload, "
        f"then {plan.runs} run(s) of {plan.duration} s (login and signUp "
        f"{plan.slow_duration} s); figures are medians over runs, ratios are medians "
        "of the ratios of runs taken one after the other (pair by pair).",
        "- Service: `server.py --port P --workers N` with USER_SERVICE_ENV=production, "
        f"ES256 access tokens, bcrypt cost {BCRYPT_COST}, SQLite, and the per-address "
        "login-failure and sign-up limits raised out of the way. Baseline: "
        "`bench/baseline.py`, bare Starlette doing `me`'s work (API-key digest, "
        "ES256 verification remembered by token digest, one indexed Peewee read, "
        "JSON), uvicorn with the same "
        "options; it reads with Peewee model queries (the baseline of the "
        "targets) or, as a second baseline, with hand-written SQL through "
        "Peewee's execute_sql.",
        "- Databases: "
        + "; ".join(
            f"{d.title} seeded in {d.seconds:.1f} s (insert_many, one hash)"
            for d in databases
        )
        + ". `me` is measured for the same account everywhere.",
        f"- bcrypt limit: cores ÷ median of {len(bcrypt)} in-process checks "
        f"(auth.passwords.password_matches) at cost {BCRYPT_COST}: "
        + ", ".join(f"{t * 1000:.0f} ms" for t in bcrypt)
        + ".",
        "- RSS: VmRSS of each worker process, sampled every 0.2 s while it is "
        "under load; the maximum.",
        *(
            [
                "- PostgreSQL: a fresh database on the local server, seeded like "
                "the SQLite ones and dropped at the end; one service worker reads "
                f"it directly, another through bench/delay_proxy.py ({DELAY_MS} ms "
                "each way, never less: its own hop and timer wake-ups add a few "
                "tenths of a millisecond), a process of its own on the same "
                "cores; `me` at 32 connections, "
                f"{plan.latency_duration} s runs, the two taken in turn."
            ]
            if any(d.engine == "PostgreSQL" for d in databases)
            else []
        ),
        "",
        "## Targets",
        "",
        "| figure | measured | target | |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r.name} | {fmt(r.value, 2)} | {r.target} | **{verdict(r)}** |"
        for r in ratios
    ]
    lines += ["", "How each ratio was taken:", ""]
    lines += [f"- {r.name}: {r.detail}" for r in ratios]
    lines += [
        "",
        "## Figures",
        "",
        "| workload | server | conns | req/s | p50 ms | p99 ms | runs (req/s) "
        "| other CPU |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for f in figures:
        runs = ", ".join(fmt(r.rps) for r in f.runs)
        other = median([r.other_cores for r in f.runs])
        lines.append(
            f"| {f.workload} | {f.server} | {f.connections} | {fmt(f.rps)} | "
            f"{fmt(f.p50, 2)} | {fmt(f.p99, 2)} | {runs} | {fmt(other, 2)} |"
        )
    lines += [
        "",
        "*other CPU*: cores busy with processes outside the benchmark during the "
        "runs (median): work of other sessions on the machine, which lowers the "
        "figures. For `me` under login load it includes the parallel login wrk.",
    ]
    lines += [
        "",
        "## Memory under load",
        "",
        "| server | workers | max RSS per worker (MB) |",
        "| --- | ---: | ---: |",
    ]
    for server in servers:
        lines.append(f"| {server.name} | {server.workers} | {fmt(server.max_rss_mb)} |")
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    lines += ["", "## Errors", ""]
    lines += [f"- {f}" for f in failures] or [
        "None: every wrk run answered 2xx without socket errors; every check passed."
    ]
    return "\n".join(lines) + "\n"


def verdict(ratio: Ratio) -> str:
    if ratio.passed is None:
        return "info"
    return "PASS" if ratio.passed else "MISS"


def request_outcomes(server: Server) -> dict[str, int]:
    """Outcomes in the service's JSON request log (GraphQL errors answer 200)."""
    counts: dict[str, int] = {}
    with contextlib.suppress(OSError), server.log_path.open(errors="replace") as log:
        for line in log:
            start = line.find('{"requestId"')
            if start < 0:
                continue
            with contextlib.suppress(ValueError):
                outcome = str(json.loads(line[start:]).get("outcome"))
                counts[outcome] = counts.get(outcome, 0) + 1
    return counts


# ---- the whole run ----------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    plan = make_plan(args)
    started_at = datetime.now(UTC)
    started = time.monotonic()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        ensure_wrk()
    except BenchError as error:
        say(f"error: {error}")
        return 2
    data_dir = Path(tempfile.mkdtemp(prefix="user-service-bench-"))
    servers: list[Server] = []
    harness = Harness(plan, servers)
    cleanup = contextlib.ExitStack()  # after the servers stop: PostgreSQL databases
    try:
        return run(plan, argv, harness, data_dir, servers, cleanup, started, started_at)
    except BenchError as error:
        say(f"\nerror: {error}")
        return 1
    finally:
        harness.stop_wrk()
        for server in servers:
            server.stop()
        cleanup.close()
        if args.keep:
            say(f"data kept in {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


def run(
    plan: Plan,
    argv: list[str],
    harness: Harness,
    data_dir: Path,
    servers: list[Server],
    cleanup: contextlib.ExitStack,
    started: float,
    started_at: datetime,
) -> int:
    from auth.passwords import hash_password
    from settings import Settings

    say(f"data directory: {data_dir}")
    load_before = os.getloadavg()[0]
    info = machine()
    cores = os.cpu_count() or 1

    say(f"\n== bcrypt at cost {BCRYPT_COST}, in process")
    password_hash = hash_password(PASSWORD, cost=BCRYPT_COST)
    bcrypt = bcrypt_seconds(password_hash, 3 if plan.quick else 7)
    bcrypt_limit = cores / median(bcrypt)
    say(f"  median {median(bcrypt) * 1000:.0f} ms -> limit {bcrypt_limit:.2f} checks/s")

    databases = []
    for users in plan.users:
        path = data_dir / f"users-{human_count(users)}.db"
        database = Database(users, f"sqlite:///{path}")
        say(f"\n== seeding {users:,} users")
        seed(database, password_hash)
        say(f"  {database.seconds:.1f} s")
        databases.append(database)
    small = databases[0]
    postgres: Database | None = None
    if plan.postgres:
        url = cleanup.enter_context(postgres_database(plan.postgres))
        postgres = Database(plan.small, url, engine="PostgreSQL")
        say(f"\n== seeding {postgres.title}")
        seed(postgres, password_hash)
        say(f"  {postgres.seconds:.1f} s")
    seeded = [*databases, *([postgres] if postgres else [])]

    data_key = secrets.token_urlsafe(36)

    def add(
        kind: str, database: Database, workers: int, queries: str = "model"
    ) -> Server:
        for server in servers:
            if (server.kind, server.database, server.workers, server.queries) == (
                kind,
                database,
                workers,
                queries,
            ):
                return server
        env = server_env(database, data_dir, data_key)
        server = Server(kind, database, workers, env, data_dir, queries)
        servers.append(server)
        return server

    service = add("service", small, plan.workers)
    baseline = add("baseline", small, plan.workers)
    baseline_sql = add("baseline", small, plan.workers, "sql")
    big_services = {d.users: add("service", d, plan.workers) for d in databases[1:]}
    big_baselines = {d.users: add("baseline", d, plan.workers) for d in databases[1:]}
    one, two = (add(kind, small, w) for kind, w in (("service", 1), ("service", 2)))
    baseline_one, baseline_two = (add("baseline", small, w) for w in (1, 2))
    # One worker on PostgreSQL, directly and through the delay proxy.
    on_postgres: list[Server] = []
    if postgres is not None:
        env = server_env(postgres, data_dir, data_key)
        on_postgres = [
            Server("service", postgres, 1, env, data_dir, delay_ms=delay)
            for delay in (0, DELAY_MS)
        ]
        servers += on_postgres

    say("\n== starting servers")
    for server in servers:
        server.start()
    for server in servers:
        server.wait_ready()
        say(f"  {server.name} on port {server.port}, pids {server.worker_pids()}")

    say("\n== correctness checks")
    for database in seeded:
        origin = next(
            s for s in servers if s.kind == "service" and s.database is database
        )
        database.token = log_in(origin)
    # Every server answers `me` with the same account, field for field.
    reference = {
        d.url: check_me(s)
        for d in seeded
        for s in servers
        if s.kind == "service" and s.database is d
    }
    for server in servers:
        answer = check_me(server)
        if answer != reference[server.database.url]:
            expected = reference[server.database.url]
            raise BenchError(f"{server.name} answers {answer}, not {expected}")
    check_writes(service)
    say("  login, me (service and baseline), updateProfile, signUp: OK")

    figures: list[Figure] = []
    ratios: list[Ratio] = []
    notes: list[str] = []

    def figure(
        workload: str, server: Server, connections: int, runs: list[Run]
    ) -> None:
        figures.append(Figure(workload, server.name, connections, runs))

    # me at 1 and 32 connections: service and baseline side by side, each bigger
    # database, and (32 connections) the other worker count for scaling.
    scale = [
        s for s in (one, two, baseline_one, baseline_two) if s.workers != plan.workers
    ]
    where: dict[str, Server] = {}
    me_runs: dict[int, dict[str, list[Run]]] = {}
    for connections in (1, 32):
        items = []
        for label, server in [
            ("service", service),
            ("baseline", baseline),
            ("baseline sql", baseline_sql),
            *[(f"service {human_count(u)}", s) for u, s in big_services.items()],
            *[(f"baseline {human_count(u)}", s) for u, s in big_baselines.items()],
            *(
                [(f"{s.kind} w{s.workers}", s) for s in scale]
                if connections > 1
                else []
            ),
        ]:
            label = f"me {label} c{connections}"
            where[label] = server
            items.append((label, server, "me.lua", connections))
        plural = "s" if connections > 1 else ""
        me_runs[connections] = harness.rounds(
            f"me, {connections} connection{plural}", items, plan.duration
        )
        for label, runs in me_runs[connections].items():
            figure("me", where[label], connections, runs)
    c1, c32 = me_runs[1], me_runs[32]

    writes = harness.rounds(
        "updateProfile, 32 connections",
        [("updateProfile c32", service, "update_profile.lua", 32)],
        plan.duration,
    )
    figure("updateProfile (own city)", service, 32, writes["updateProfile c32"])
    login_connections = LOGIN_CONNECTIONS_PER_CORE * cores
    sign_ups = harness.rounds(
        f"signUp, {login_connections} connections",
        [("signUp", service, "sign_up.lua", login_connections)],
        plan.slow_duration,
    )
    figure("signUp", service, login_connections, sign_ups["signUp"])
    logins = harness.rounds(
        f"login, {login_connections} connections",
        [("login", service, "login.lua", login_connections)],
        plan.slow_duration,
    )
    figure("login", service, login_connections, logins["login"])
    loaded = harness.under_login(service, [32, 1])
    for connections in (32, 1):
        figure(
            "me, idle (paired)", service, connections, loaded[f"idle c{connections}"]
        )
        figure(
            "me, under login load",
            service,
            connections,
            loaded[f"loaded c{connections}"],
        )
        figure(
            f"login, in parallel with me c{connections}",
            service,
            login_connections,
            loaded[f"login c{connections}"],
        )
    latency: list[list[Run]] = []
    if on_postgres:
        items = [
            ("me postgres c32", on_postgres[0], "me.lua", 32),
            (f"me postgres +{DELAY_MS} ms c32", on_postgres[1], "me.lua", 32),
        ]
        latency = list(
            harness.rounds(
                f"me on PostgreSQL, 32 connections, without and with {DELAY_MS} ms "
                "each way",
                items,
                plan.latency_duration,
            ).values()
        )
        for server, runs in zip(on_postgres, latency, strict=True):
            figure("me", server, 32, runs)

    # ---- ratios
    ratios.append(
        ratio_to_baseline(c32["me service c32"], c32["me baseline c32"], plan.workers)
    )
    ratios.append(sql_ceiling_ratio(c32["me service c32"], c32["me baseline sql c32"]))
    ratios.append(login_ratio(logins["login"], bcrypt, cores, login_connections))
    ratios.append(under_login_ratio(loaded, login_connections))
    for users in big_services:
        ratios.append(size_ratio(c1, c32, human_count(users), small.label))
    service_servers = [s for s in servers if s.kind == "service"]
    worst = max(service_servers, key=lambda s: s.max_rss_mb)
    ratios.append(
        Ratio(
            "server RSS under load, per worker (MB)",
            worst.max_rss_mb,
            f"≤ {MAX_RSS_MB}",
            check(worst.max_rss_mb, "<=", MAX_RSS_MB),
            f"the largest of every service worker under any load: {worst.name}.",
        )
    )
    scale_runs = {
        (s.kind, s.workers): c32[label]
        for label, s in where.items()
        if label in c32 and s.database is small and s.queries == "model"
    }
    ratios.append(workers_ratio(scale_runs, cores))
    if latency:
        threads = Settings.from_env(on_postgres[1].env).database_threads
        ratios.append(latency_ratio(latency[0], latency[1], threads))
    sign_up_rps = med(sign_ups["signUp"], "rps")
    notes.append(
        f"signUp hashes with bcrypt at cost {BCRYPT_COST} too: {fmt(sign_up_rps, 2)}/s"
        f" = {fmt(sign_up_rps / bcrypt_limit, 2)} of the bcrypt limit."
    )

    notes.append(
        f"Load average (1 min) {load_before:.2f} before the run, "
        f"{os.getloadavg()[0]:.2f} after it; the bench's own processes use the "
        "cores fully, anything else running at the same time lowers the figures."
    )
    # GraphQL errors answer HTTP 200: count them in the service's request log.
    for server in service_servers:
        outcomes = request_outcomes(server)
        bad = {k: v for k, v in outcomes.items() if k != "OK"}
        total = sum(outcomes.values())
        if bad:
            harness.failures.append(f"{server.name}: request log outcomes {bad}")
        notes.append(
            f"{server.name}: {total:,} request-log lines"
            + (f", non-OK outcomes {bad}" if bad else ", every outcome OK")
            + "."
            + (
                " Its workers wrote no request log at all: the logging that "
                "server.py sets up does not reach uvicorn's spawned workers, so "
                "each does less work per request than a single worker does."
                if total == 0 and server.workers > 1
                else ""
            )
        )

    elapsed = time.monotonic() - started
    text = render(
        plan=plan,
        argv=argv,
        info=info,
        started=started_at,
        elapsed=elapsed,
        figures=figures,
        ratios=ratios,
        servers=servers,
        bcrypt=bcrypt,
        databases=seeded,
        notes=notes,
        failures=harness.failures,
    )
    if plan.quick:
        out = BENCH / "results" / "quick.md"
        out.parent.mkdir(exist_ok=True)
    else:
        out = BENCH / "RESULTS.md"
    out.write_text(text)
    raw = BENCH / "results" / ("quick.json" if plan.quick else "full.json")
    raw.parent.mkdir(exist_ok=True)
    raw.write_text(
        json.dumps(
            {
                "figures": [
                    {
                        "workload": f.workload,
                        "server": f.server,
                        "connections": f.connections,
                        "runs": [r.__dict__ | {"rps": r.rps} for r in f.runs],
                    }
                    for f in figures
                ],
                "ratios": [r.__dict__ for r in ratios],
                "rss_kb": {s.name: s.rss_kb for s in servers},
                "bcrypt_seconds": bcrypt,
            },
            indent=1,
            default=str,
        )
    )
    say("\n" + text)
    say(f"written to {out.relative_to(ROOT)}")
    if harness.failures:
        say(f"FAILED: {len(harness.failures)} problem(s); see the Errors section")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
