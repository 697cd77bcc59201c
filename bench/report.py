"""The report: the machine and versions, the table printed at the end, written
to bench/RESULTS.md (--quick: bench/results/quick.md), and the raw figures as
JSON in bench/results/."""

import contextlib
import importlib.metadata
import json
import os
import platform
import shlex
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from bench.figures import Figure, Ratio, fmt, median
from bench.plan import BCRYPT_COST, BENCH, DELAY_MS, ROOT, Database, Plan
from bench.servers import Server

PACKAGES = [  # the versions the report names
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
        f"- bcrypt at cost {BCRYPT_COST} (auth.passwords.password_matches), "
        f"{len(bcrypt)} checks one at a time at the start: "
        + ", ".join(f"{t * 1000:.0f} ms" for t in bcrypt)
        + ". The login ratio's limit is the rate of one checking thread per core, "
        "measured in the benchmark's process right before each login run.",
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
        "runs (median): other work on the machine, which lowers the "
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


def write(
    plan: Plan,
    text: str,
    figures: list[Figure],
    ratios: list[Ratio],
    servers: list[Server],
    bcrypt: list[float],
) -> Path:
    """Write the report (and the raw figures as JSON); its path from the root."""
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
    return out.relative_to(ROOT)
