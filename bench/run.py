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

The parts are modules of the bench package: plan (the settings of a run), seed,
servers, checks, load (wrk), figures (medians and ratios) and report; steps runs
them in order, and this file is the command line.
"""

import argparse
import contextlib
import shutil
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load import Harness, ensure_wrk
from bench.plan import POSTGRES_URL, BenchError, make_plan, say
from bench.servers import Server
from bench.steps import run


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


def main(argv: list[str] | None = None) -> int:
    """The whole run; whatever happens, stop wrk and the servers, drop the
    PostgreSQL database and remove the data directory (unless --keep)."""
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


if __name__ == "__main__":
    sys.exit(main())
