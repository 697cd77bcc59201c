"""Prometheus metrics: requests, latency, logins, rate-limit refusals, database errors.

Labels take values from bounded sets only (root field names of the schema,
outcomes from the contract's codes), never from what a client sends as is.
With several workers, PROMETHEUS_MULTIPROC_DIR makes the counts add up across
them (`serve` sets it up).
"""

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter(
    "user_service_requests_total",
    "GraphQL requests by operation and outcome (an error code, or OK).",
    ["operation", "outcome"],
)
LATENCY = Histogram(
    "user_service_request_duration_seconds",
    "Time to answer a GraphQL request, by operation.",
    ["operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
LOGINS = Counter(
    "user_service_logins_total",
    "Login attempts by outcome: OK or the error code (UNAUTHENTICATED, RATE_LIMITED…).",
    ["outcome"],
)
RATE_LIMITED = Counter(
    "user_service_rate_limited_total", "Requests refused by a rate limit.", ["limit"]
)
MAIL_FAILURES = Counter(
    "user_service_mail_failures_total", "Mails given up on after every retry."
)
DATABASE_ERRORS = Counter(
    "user_service_database_errors_total", "Database errors while answering."
)


def exposition() -> tuple[bytes, str]:
    """The text exposition format; merged across workers when there are several."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
