"""Figures (medians over runs) and the ratios against the targets of issue 6,
taken pair by pair."""

import statistics
from collections.abc import Callable
from dataclasses import dataclass

from bench.load import Run
from bench.plan import DELAY_MS

MAX_RSS_MB = 80  # per service worker, under load
MIN_LATENCY_RATIO = 0.8  # `me` req/s with DELAY_MS each way ÷ without


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
    """One workload on one server: the medians of its runs."""

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
    """A ratio against its target, and how it was taken."""

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
        "≥ 1.0",
        check(value, ">=", 1.0),
        f"service {fmt(med(service, 'rps'))} req/s, baseline "
        f"{fmt(med(baseline, 'rps'))} req/s; median of the per-run ratios.",
    )


def sql_ceiling_ratio(service: list[Run], baseline: list[Run]) -> Ratio:
    value = pair_ratio(service, baseline, lambda r: r.rps)
    return Ratio(
        "`me` req/s ÷ hand-written-SQL baseline req/s (32 conns)",
        value,
        "≥ 0.4",
        check(value, ">=", 0.4),
        f"service {fmt(med(service, 'rps'))} req/s, baseline with hand-written SQL "
        f"{fmt(med(baseline, 'rps'))} req/s: the ceiling if every query skipped "
        "Peewee's query builder.",
    )


def strawberry_ratio(strawberry: list[Run], baseline: list[Run]) -> Ratio:
    """What Strawberry leaves of the hand-written-SQL baseline when it does that
    work and nothing more: the practical ceiling of the ratio above."""
    value = pair_ratio(strawberry, baseline, lambda r: r.rps)
    return Ratio(
        "hand-written-SQL baseline in bare Strawberry ÷ without GraphQL (32 conns)",
        value,
        "information",
        None,
        f"the same work as a `me` resolver behind Strawberry's HTTP view, parser "
        f"and validation caches on: {fmt(med(strawberry, 'rps'))} vs "
        f"{fmt(med(baseline, 'rps'))} req/s: the practical ceiling of the "
        "service's ratio to the hand-written-SQL baseline (the service skips "
        "Strawberry's HTTP view, but does more work around the schema).",
    )


def login_ratio(
    logins: list[Run], limits: list[float], cores: int, connections: int
) -> Ratio:
    """Logins per second against what bcrypt allowed right before each run."""
    value = median([run.rps / limit for run, limit in zip(logins, limits, strict=True)])
    return Ratio(
        "`login`/s ÷ bcrypt limit",
        value,
        "≥ 0.9",
        check(value, ">=", 0.9),
        f"{fmt(med(logins, 'rps'), 2)} logins/s ({connections} conns) ÷ "
        f"{fmt(median(limits), 2)} checks/s, the rate of {cores} threads "
        "checking passwords in the benchmark's process just before each run; "
        "median of the per-run ratios.",
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


def fmt(value: float, digits: int = 1) -> str:
    return "n/a" if value != value else f"{value:,.{digits}f}"
