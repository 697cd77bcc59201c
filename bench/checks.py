"""Correctness, once, before loading (urllib): a real login, `me` field for
field on every server, updateProfile and signUp; afterwards, the outcomes in
the service's request log (GraphQL errors answer HTTP 200)."""

import contextlib
import json
import time
import urllib.error
import urllib.request
from typing import Any

from bench.plan import EMAIL, PASSWORD, SIGNUP_PASSWORD, BenchError, Database, say
from bench.servers import Server

ME_QUERY = (
    "{ me { id email role city organization designation mobile createdAt updatedAt } }"
)


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


REQUEST_LOG = "user_service.requests"  # the logger of the request log's lines


def request_outcomes(server: Server) -> dict[str, int]:
    """Outcomes in the service's JSON request log (GraphQL errors answer 200)."""
    counts: dict[str, int] = {}
    with contextlib.suppress(OSError), server.log_path.open(errors="replace") as log:
        for line in log:
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and entry.get("logger") == REQUEST_LOG:
                    outcome = str(entry.get("outcome"))
                    counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def check_servers(
    databases: list[Database], servers: list[Server], service: Server
) -> None:
    """A real login per database gives the token of every `me`; every server
    answers `me` with the same account, field for field; updateProfile and
    signUp answer on `service` without errors."""
    say("\n== correctness checks")
    for database in databases:
        origin = next(
            s for s in servers if s.kind == "service" and s.database is database
        )
        database.token = log_in(origin)
    # Every server answers `me` with the same account, field for field.
    reference = {
        d.url: check_me(s)
        for d in databases
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


def request_log_notes(servers: list[Server], failures: list[str]) -> list[str]:
    """A note per service about its request log; non-OK outcomes are failures."""
    notes: list[str] = []
    # GraphQL errors answer HTTP 200: count them in the service's request log.
    for server in servers:
        outcomes = request_outcomes(server)
        bad = {k: v for k, v in outcomes.items() if k != "OK"}
        total = sum(outcomes.values())
        if bad:
            failures.append(f"{server.name}: request log outcomes {bad}")
        if total == 0:  # then GraphQL errors would go unseen
            failures.append(f"{server.name}: no request-log lines found")
        notes.append(
            f"{server.name}: {total:,} request-log lines"
            + (f", non-OK outcomes {bad}" if bad else ", every outcome OK")
            + "."
        )
    return notes
