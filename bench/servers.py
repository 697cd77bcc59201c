"""The benchmark's server processes: the service and the baseline as uvicorn
subprocesses (started, waited for and stopped by processes.py, as the tests'
are), the delay proxy in front of PostgreSQL, and what the harness reads of them
in /proc: worker processes, their RSS, and the CPU of everything else."""

import contextlib
import os
import re
import resource
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.plan import BCRYPT_COST, BENCH, ROOT, BenchError, Database
from processes import (
    NotHealthy,
    free_port,
    start_group,
    stop_group,
    wait_until_healthy,
)

HUGE_LIMIT = "1000000000 per hour"  # rate limits that never throttle the benchmark


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
        if process is not None:
            stop_group(process, 5)


@dataclass
class Server:
    """The service or the baseline: one uvicorn process group on loopback."""

    kind: str  # "service" or "baseline"
    database: Database
    workers: int
    env: dict[str, str]
    log_dir: Path
    queries: str = "model"  # the baseline's way to read: "model" or "sql"
    strawberry: bool = False  # the baseline's work as a bare Strawberry resolver
    delay_ms: int = 0  # added each way to the database by a DelayProxy
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    proxy: DelayProxy | None = None
    rss_kb: dict[int, int] = field(default_factory=dict)  # worker pid -> max VmRSS

    @property
    def name(self) -> str:
        workers = f"{self.workers} worker" + ("s" if self.workers > 1 else "")
        kind = self.kind + (", hand-written SQL" if self.queries == "sql" else "")
        kind += ", in bare Strawberry" if self.strawberry else ""
        delay = f", {self.delay_ms} ms each way" if self.delay_ms else ""
        return f"{kind} ({self.database.title}{delay}, {workers})"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    @property
    def log_path(self) -> Path:
        name = f"{self.kind}-{self.queries}-{self.database.label}-w{self.workers}"
        name += "-strawberry" if self.strawberry else ""
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
            script += ["--strawberry"] if self.strawberry else []
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
        # Its own process group: stop() ends it all.
        self.process = start_group(
            command, cwd=ROOT, env=self.env, log_path=self.log_path
        )

    def wait_ready(self, timeout: float = 90.0) -> None:
        assert self.process is not None
        try:
            wait_until_healthy(
                self.process, self.port, timeout, ready=self.ready_workers
            )
        except NotHealthy as error:
            what = "exited" if error.exited else "did not start"
            raise BenchError(f"{self.name} {what}:\n{self.log_tail()}") from None

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
        process, self.process = self.process, None
        if process is not None:
            stop_group(process, 15)  # SIGTERM to the group, then SIGKILL

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
