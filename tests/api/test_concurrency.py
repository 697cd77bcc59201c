"""Races and restarts against a real server: `python server.py` in a subprocess.

Two uvicorn workers share one SQLite file, so concurrent requests really run in
parallel (within one worker the event loop would serialize most of them).
"""

import itertools
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.conftest import PASSWORD, make_environ
from tests.servers import LOOSE_LIMITS, Server, Servers, create_tenant

pytestmark = pytest.mark.slow

# Two workers under a burst of requests start and answer slower than one.
STARTUP_SECONDS = 30.0
HTTP_SECONDS = 30.0
T = TypeVar("T")


def server_environ(data_dir: Path) -> dict[str, str]:
    return make_environ(data_dir, **LOOSE_LIMITS)


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    started = Servers(startup_seconds=STARTUP_SECONDS, http_timeout=HTTP_SECONDS)
    yield started
    started.stop_all()


@pytest.fixture(scope="module")
def server(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Server:
    """One server for the race tests; each test uses emails of its own."""
    environ = server_environ(tmp_path_factory.mktemp("races"))
    return servers.start(environ, workers=2)


def run_at_once(calls: list[Callable[[], T]]) -> list[T]:
    """Run every call in its own thread, released together by a barrier."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(run, call) for call in calls]
        return [future.result(timeout=120) for future in futures]


# ---- C11: uniqueness under concurrency ---------------------------------------


def test_concurrent_sign_ups_of_one_email_in_variants_make_exactly_one_account(
    server: Server,
) -> None:
    api = server.dev
    variants = [
        "race.ann@x.io",
        "Race.Ann@X.io",
        "  race.ann@x.io ",
        "RACE.ANN@X.IO",
        "\trAcE.aNn@x.Io",
    ]
    emails = [variants[attempt % len(variants)] for attempt in range(20)]
    results = run_at_once([partial(api.sign_up, email) for email in emails])
    assert {result.status for result in results} == {200}
    assert Counter(result.error_code for result in results) == {
        None: 1,
        "EMAIL_TAKEN": 19,
    }
    api.login("race.ann@x.io").ok()


# ---- concurrent profile edits lose nothing -----------------------------------


def field_value(field: str, attempt: int) -> str:
    return f"+4790000{attempt:03d}" if field == "mobile" else f"{field}-{attempt}"


def test_concurrent_profile_edits_of_different_fields_lose_nothing(
    server: Server,
) -> None:
    api = server.dev
    token = api.user("race.profile@x.io", designation="Engineer")
    fields = ("city", "organization", "mobile")
    combinations = [
        combination
        for size in (1, 2, 3)
        for combination in itertools.combinations(fields, size)
    ]
    edits: list[dict[str, Any]] = [
        {field: field_value(field, attempt) for field in combinations[attempt % 7]}
        for attempt in range(30)
    ]
    results = run_at_once(
        [
            partial(api.update_profile, token, email="race.profile@x.io", **edit)
            for edit in edits
        ]
    )
    for result in results:
        result.ok()
    profile = api.me(token).ok()["me"]
    for field in fields:
        sent = {edit[field] for edit in edits if field in edit}
        assert profile[field] in sent, (field, profile[field])
    assert profile["designation"] == "Engineer"  # never sent: untouched


# ---- E5: racing demotions keep an ADMIN --------------------------------------


def test_two_admins_demoting_each_other_at_once_keep_an_admin(server: Server) -> None:
    acme = server.api(create_tenant(server.environ, "race-acme", "boss@race.io"))
    tokens = {"boss@race.io": acme.token("boss@race.io")}
    acme.sign_up("second@race.io", role="ADMIN", token=tokens["boss@race.io"]).ok()
    tokens["second@race.io"] = acme.token("second@race.io")
    for _round in range(5):
        results = run_at_once(
            [
                partial(acme.update_profile, tokens[actor], email=target, role="USER")
                for actor, target in itertools.permutations(tokens, 2)
            ]
        )
        codes = [result.error_code for result in results]
        assert "FORBIDDEN" in codes, codes
        assert set(codes) <= {None, "FORBIDDEN"}, codes
        roles = {
            email: acme.me(token).ok()["me"]["role"] for email, token in tokens.items()
        }
        admins = [email for email, role in roles.items() if role == "ADMIN"]
        assert admins, roles
        # Promote the other one again for the next round.
        for email in tokens:
            acme.update_profile(tokens[admins[0]], email=email, role="ADMIN").ok()


def test_managers_revoking_each_others_roles_at_once_keep_a_manager(
    server: Server,
) -> None:
    acme = server.api(create_tenant(server.environ, "race-roles", "boss@roles.io"))
    boss = acme.token("boss@roles.io")
    define = (
        "mutation($n: String!, $p: [String!]!) {"
        " defineRole(name: $n, permissions: $p) { name } }"
    )
    acme.gql(define, {"n": "manager", "p": ["roles:manage"]}, token=boss).ok()
    grant = 'mutation($e: String!) { grantRole(email: $e, role: "manager") { email } }'
    revoke = (
        'mutation($e: String!) { revokeRole(email: $e, role: "manager") { email } }'
    )
    tokens = {}
    for email in ("ann@roles.io", "bob@roles.io", "cid@roles.io"):
        acme.sign_up(email).ok()
        acme.gql(grant, {"e": email}, token=boss).ok()
        tokens[email] = acme.token(email)
    # The ADMIN steps down: only the role's holders can manage roles now.
    acme.update_profile(boss, email="boss@roles.io", role="USER").ok()
    access = "{ me { permissions } }"
    for _round in range(5):
        results = run_at_once(
            [
                partial(acme.gql, revoke, {"e": target}, token=tokens[actor])
                for actor, target in itertools.permutations(tokens, 2)
            ]
        )
        codes = Counter(result.error_code for result in results)
        assert set(codes) <= {None, "FORBIDDEN"}, codes
        managers = [
            email
            for email, token in tokens.items()
            if "roles:manage" in acme.gql(access, token=token).ok()["me"]["permissions"]
        ]
        assert managers, codes  # the tenant kept a holder of roles:manage
        for email in tokens:  # grant the role back for the next round
            acme.gql(grant, {"e": email}, token=tokens[managers[0]]).ok()


# ---- durability ----------------------------------------------------------------


def test_accounts_survive_a_server_restart(servers: Servers, tmp_path: Path) -> None:
    environ = server_environ(tmp_path)
    first = servers.start(environ, workers=1)
    first.dev.sign_up("keep@x.io", city="Oslo").ok()
    servers.stop(first)
    second = servers.start(environ, workers=1)
    token = second.dev.token("keep@x.io")
    me = second.dev.me(token).ok()["me"]
    assert (me["email"], me["city"], me["role"]) == ("keep@x.io", "Oslo", "USER")


def log_records(server: Server) -> list[str]:
    """The JSON lines of the server's log (the banner is plain text on stdout)."""
    lines = server.log_path.read_text().splitlines()
    return [line for line in lines if line.startswith("{")]


def test_every_worker_writes_the_request_log(server: Server) -> None:
    """Workers are new processes: each must set up logging for itself."""
    api = server.dev
    for _ in range(6):  # two workers share them
        api.gql("{ passwordPolicy { minLength } }").ok()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [
            entry
            for entry in map(json.loads, log_records(server))
            if entry["logger"] == "user_service.requests"
        ]
        logged = [line for line in lines if line["operation"] == "passwordPolicy"]
        if len(logged) == 6:
            break
        time.sleep(0.1)
    assert len(logged) == 6
    assert {line["outcome"] for line in logged} == {"OK"}


# ---- two accounts confirming one new address at once --------------------------

CHANGE_LINK = "confirm-email-change?token="
REQUEST_CHANGE = """mutation($email: String!, $password: String!) {
  requestEmailChange(newEmail: $email, password: $password) }"""
CONFIRM_CHANGE = """mutation($token: String!) {
  confirmEmailChange(token: $token) { id email } }"""


def mailed_change_tokens(server: Server, count: int) -> list[str]:
    """The email-change tokens the server has mailed (to its log), once `count`."""
    deadline = time.monotonic() + 10
    while True:
        text = "\n".join(log_records(server))
        tokens = list(
            dict.fromkeys(re.findall(re.escape(CHANGE_LINK) + r"([\w-]+)", text))
        )
        if len(tokens) >= count or time.monotonic() > deadline:
            return tokens
        time.sleep(0.1)


def test_two_accounts_confirming_one_new_address_at_once_end_with_one_owner(
    server: Server,
) -> None:
    api = server.dev
    for round_ in range(3):
        owners = [f"race.move{round_}.{n}@x.io" for n in (1, 2)]
        wanted = f"race.moved{round_}@x.io"
        seen = len(mailed_change_tokens(server, 0))
        for email in owners:
            variables = {"email": wanted, "password": PASSWORD}
            api.gql(REQUEST_CHANGE, variables, token=api.user(email)).ok()
        tokens = mailed_change_tokens(server, seen + 2)[seen:]
        assert len(tokens) == 2, tokens
        results = run_at_once(
            [partial(api.gql, CONFIRM_CHANGE, {"token": token}) for token in tokens]
        )
        assert sorted(str(result.error_code) for result in results) == [
            "EMAIL_TAKEN",
            "None",
        ]
        winner = next(result for result in results if result.error_code is None)
        me = api.me(api.token(wanted)).ok()["me"]
        assert me["id"] == winner.data["confirmEmailChange"]["id"]
        assert sum(api.login(email).error_code is None for email in owners) == 1


def test_two_admins_deleting_themselves_at_once_keep_one(server: Server) -> None:
    acme = server.api(create_tenant(server.environ, "race-delete", "boss@delete.io"))
    boss = acme.token("boss@delete.io")
    acme.sign_up("second@delete.io", role="ADMIN", token=boss).ok()
    tokens = [boss, acme.token("second@delete.io")]
    delete = "mutation($p: String!) { deleteAccount(password: $p) }"
    results = run_at_once(
        [partial(acme.gql, delete, {"p": PASSWORD}, token=token) for token in tokens]
    )
    codes = sorted(str(result.error_code) for result in results)
    assert codes == ["FORBIDDEN", "None"]
    kept = [token for token in tokens if acme.me(token).error_code is None]
    assert len(kept) == 1
    assert acme.me(kept[0]).ok()["me"]["role"] == "ADMIN"
