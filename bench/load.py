"""The load: wrk (1 thread, scripts in bench/lua/), its warm-ups and interleaved
runs, `me` while logins saturate the CPU, and the Run each wrk run gives."""

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.plan import (
    BENCH,
    EMAIL,
    LOGIN_CONNECTIONS_PER_CORE,
    PASSWORD,
    SIGNUP_PASSWORD,
    BenchError,
    Plan,
    say,
)
from bench.servers import CpuMeter, Server, sampling
from processes import kill_group

LUA = BENCH / "lua"


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
class Run:
    """What one wrk run measured."""

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
    """Drives the servers with wrk and keeps the failures of every run."""

    def __init__(self, plan: Plan, servers: list[Server]) -> None:
        self.plan = plan
        self.servers = servers
        self.failures: list[str] = []
        self.unique = 0
        self.running: set[subprocess.Popen[bytes]] = set()

    def stop_wrk(self) -> None:
        for process in list(self.running):
            kill_group(process)
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
                    kill_group(process)
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
        self,
        title: str,
        items: list[tuple[str, Server, str, int]],
        seconds: int,
        *,
        before_run: Callable[[], None] | None = None,
    ) -> dict[str, list[Run]]:
        """Warm each item up, then run them in turn, `runs` times (interleaved,
        so that pairs of items can be compared run by run); `before_run` is
        called before each run."""
        say(f"\n== {title}")
        for label, server, script, connections in items:
            self.warm_up(label, server, script, connections)
        results: dict[str, list[Run]] = {label: [] for label, *_ in items}
        for number in range(self.plan.runs):
            for label, server, script, connections in items:
                if before_run is not None:
                    before_run()
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
