"""One run, step by step: the bcrypt limit, seeding, the servers, the checks,
every workload, the ratios, and the report."""

import contextlib
import os
import secrets
import time
from datetime import datetime
from pathlib import Path

from bench.checks import check_servers, request_log_notes
from bench.figures import (
    MAX_RSS_MB,
    Figure,
    Ratio,
    check,
    fmt,
    latency_ratio,
    login_ratio,
    med,
    median,
    ratio_to_baseline,
    size_ratio,
    sql_ceiling_ratio,
    strawberry_ratio,
    under_login_ratio,
    workers_ratio,
)
from bench.load import Harness, Run
from bench.plan import (
    BCRYPT_COST,
    DELAY_MS,
    LOGIN_CONNECTIONS_PER_CORE,
    PASSWORD,
    Database,
    Plan,
    human_count,
    say,
)
from bench.report import machine, render, write
from bench.seed import bcrypt_rate, bcrypt_seconds, postgres_database, seed
from bench.servers import Server, server_env

# After wrk stops, the service still checks the passwords of the logins it had
# queued (two rounds of checks at most): wait that long and more.
LOGINS_SETTLE = 1.5


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
    """Every step, in order; 0 when every check and wrk run passed, else 1.

    Servers join `servers` as they are made and PostgreSQL databases go on
    `cleanup`, so that the caller ends them whatever happens.
    """
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
        kind: str,
        database: Database,
        workers: int,
        queries: str = "model",
        *,
        strawberry: bool = False,
    ) -> Server:
        wanted = (kind, database, workers, queries, strawberry)
        for s in servers:
            if (s.kind, s.database, s.workers, s.queries, s.strawberry) == wanted:
                return s
        env = server_env(database, data_dir, data_key)
        server = Server(kind, database, workers, env, data_dir, queries, strawberry)
        servers.append(server)
        return server

    service = add("service", small, plan.workers)
    baseline = add("baseline", small, plan.workers)
    baseline_sql = add("baseline", small, plan.workers, "sql")
    strawberry_sql = add("baseline", small, plan.workers, "sql", strawberry=True)
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

    check_servers(seeded, servers, service)

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
            ("baseline sql strawberry", strawberry_sql),
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
    login_limits: list[float] = []  # bcrypt's rate right before each run

    def measure_bcrypt() -> None:
        time.sleep(LOGINS_SETTLE)  # the logins still in flight finish first
        login_limits.append(bcrypt_rate(password_hash, cores, 2 if plan.quick else 4))
        say(f"  bcrypt now: {login_limits[-1]:.2f} checks/s")

    logins = harness.rounds(
        f"login, {login_connections} connections",
        [("login", service, "login.lua", login_connections)],
        plan.slow_duration,
        before_run=measure_bcrypt,
    )["login"]
    figure("login", service, login_connections, logins)
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
    ratios.append(
        strawberry_ratio(
            c32["me baseline sql strawberry c32"], c32["me baseline sql c32"]
        )
    )
    ratios.append(login_ratio(logins, login_limits, cores, login_connections))
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
    notes += request_log_notes(service_servers, harness.failures)

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
    out = write(plan, text, figures, ratios, servers, bcrypt)
    say("\n" + text)
    say(f"written to {out}")
    if harness.failures:
        say(f"FAILED: {len(harness.failures)} problem(s); see the Errors section")
        return 1
    return 0
