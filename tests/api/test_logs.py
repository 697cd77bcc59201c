"""What the service logs: one JSON line per request, the request id that ties a
request, its response and its errors together, and never a secret
(SECURITY.md D10, G7, H; CONTRACT.md "Limits and protection")."""

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from app import json_lines
from models import database
from tests.conftest import ON_POSTGRES, Api, Result

ANN = "ann@x.io"
SECRET = "Sup3r-secret-pw!"  # every password here is unlikely to occur by chance
WRONG_SECRET = "Wr0ng-secret-pw!"
NEW_SECRET = "N3w-secret-pw!!"
BOB_SECRET = "B0b-secret-pw!!"
GENERATED_ID = re.compile(r"[0-9a-f]{32}")
JSON_LINES = json_lines()
REQUEST_LOG = "user_service.requests"
# The test client's own loggers: what it logs is not the service's log.
CLIENT_LOGGERS = ("httpx", "httpx2", "httpcore")
LOGIN = (
    "mutation SignIn($email: String!, $password: String!) {"
    " login(email: $email, password: $password) { accessToken refreshToken } }"
)
REFRESH = (
    "mutation($token: String!) { refreshSession(refreshToken: $token)"
    " { accessToken refreshToken } }"
)


@pytest.fixture
def acme(api: Api) -> Api:
    """A tenant with a random API key, unlike the documented dev key."""
    return api.tenant("acme")


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def service_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if not r.name.startswith(CLIENT_LOGGERS)]


def text_of(record: logging.LogRecord) -> str:
    """The line the service writes for the record, traceback and extras included."""
    return JSON_LINES.format(record)


def request_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        json.loads(text_of(record))
        for record in caplog.records
        if record.name == REQUEST_LOG
    ]


def line_of(caplog: pytest.LogCaptureFixture, request_id: str) -> dict[str, Any]:
    [line] = [
        entry for entry in request_lines(caplog) if entry["requestId"] == request_id
    ]
    return line


def post(
    api: Api,
    body: dict[str, Any],
    *,
    headers: dict[str, str] | None = None,
) -> Result:
    response = api.client.post(
        "/graphql", json=body, headers={"X-API-Key": api.api_key, **(headers or {})}
    )
    return Result(response.status_code, response.json(), response.headers)


# ---- G7, D10: no secret in any log record


def test_logs_of_a_whole_session_hold_no_password_token_or_api_key(
    acme: Api, client: TestClient, logs: pytest.LogCaptureFixture
) -> None:
    acme.sign_up(ANN, SECRET).ok()
    first = acme.login(ANN, SECRET).ok()["login"]
    acme.me(first["accessToken"]).ok()
    second = acme.gql(REFRESH, {"token": first["refreshToken"]}).ok()["refreshSession"]
    assert acme.login(ANN, WRONG_SECRET).error_code == "UNAUTHENTICATED"
    # The password in the document itself, not in variables.
    literal = (
        f'mutation {{ login(email: "{ANN}", password: "{WRONG_SECRET}")'
        " { accessToken } }"
    )
    assert acme.gql(literal).error_code == "UNAUTHENTICATED"
    response = client.get(
        "/graphql",
        params={"query": "{ me { email } }", "access_token": second["accessToken"]},
        headers={
            "X-API-Key": acme.api_key,
            "Authorization": f"Bearer {second['accessToken']}",
        },
    )
    assert response.json() == {"data": {"me": {"email": ANN}}}
    acme.gql(
        "mutation($old: String!, $new: String!) {"
        " changePassword(currentPassword: $old, newPassword: $new) }",
        {"old": SECRET, "new": NEW_SECRET},
        token=second["accessToken"],
    ).ok()
    # An internal error in a resolver (signUp audits), logged in full.
    cascade = " CASCADE" if ON_POSTGRES else ""
    database.execute_sql('DROP TABLE "audit_event"' + cascade)
    assert acme.sign_up("bob@x.io", BOB_SECRET).error_code == "INTERNAL_SERVER_ERROR"

    secrets = [SECRET, WRONG_SECRET, NEW_SECRET, BOB_SECRET, acme.api_key]
    secrets += [first["accessToken"], first["refreshToken"]]
    secrets += [second["accessToken"], second["refreshToken"]]
    records = service_records(logs)
    assert any(record.name == "user_service.errors" for record in records)
    leaks = [
        (record.name, secret[:12])
        for record in records
        for secret in secrets
        if secret in text_of(record)
    ]
    assert leaks == []


def test_rate_limit_trip_is_logged_without_the_email(
    acme: Api, logs: pytest.LogCaptureFixture
) -> None:
    for _ in range(5):
        assert acme.login(ANN, WRONG_SECRET).error_code == "UNAUTHENTICATED"
    assert acme.login(ANN, WRONG_SECRET).error_code == "RATE_LIMITED"
    trips = [r for r in logs.records if r.name == "user_service.rate_limits"]
    assert [record.levelno for record in trips] == [logging.WARNING]
    assert ANN not in text_of(trips[0])
    assert WRONG_SECRET not in text_of(trips[0])


# ---- H: one JSON line per request


def test_failed_login_logs_one_line_with_its_outcome(
    acme: Api, logs: pytest.LogCaptureFixture
) -> None:
    variables = {"email": ANN, "password": WRONG_SECRET}
    body = {"query": LOGIN, "variables": variables, "operationName": "SignIn"}
    result = post(acme, body, headers={"X-Request-ID": "req-login-1"})
    assert result.error_code == "UNAUTHENTICATED"
    line = line_of(logs, "req-login-1")
    duration = line.pop("durationMs")
    assert isinstance(duration, int | float)
    assert duration >= 0
    assert datetime.fromisoformat(line.pop("time")).tzinfo == UTC
    assert line == {
        "level": "INFO",
        "logger": REQUEST_LOG,
        "message": "request",
        "requestId": "req-login-1",
        "method": "POST",
        "path": "/graphql",
        "status": 200,
        "tenant": "acme",
        "operation": "login",
        "operationName": "SignIn",
        "outcome": "UNAUTHENTICATED",
    }


def test_successful_login_logs_outcome_ok(
    acme: Api, logs: pytest.LogCaptureFixture
) -> None:
    acme.sign_up(ANN, SECRET).ok()
    variables = {"email": ANN, "password": SECRET}
    body = {"query": LOGIN, "variables": variables, "operationName": "SignIn"}
    post(acme, body, headers={"X-Request-ID": "req-login-2"}).ok()
    line = line_of(logs, "req-login-2")
    assert (line["operation"], line["operationName"]) == ("login", "SignIn")
    assert (line["outcome"], line["status"], line["tenant"]) == ("OK", 200, "acme")


def test_request_line_holds_no_query_text_or_variables(
    acme: Api, logs: pytest.LogCaptureFixture
) -> None:
    variables = {"email": "marker-email@x.io", "password": WRONG_SECRET}
    body = {"query": LOGIN, "variables": variables, "operationName": "SignIn"}
    post(acme, body, headers={"X-Request-ID": "req-login-3"})
    [line] = [
        text_of(r)
        for r in logs.records
        if r.name == REQUEST_LOG and "req-login-3" in text_of(r)
    ]
    assert "marker-email" not in line
    assert "accessToken" not in line


def test_get_query_logs_its_operation_name(
    acme: Api, client: TestClient, logs: pytest.LogCaptureFixture
) -> None:
    response = client.get(
        "/graphql",
        params={"query": "query Policy { passwordPolicy { minLength } }"},
        headers={"X-API-Key": acme.api_key, "X-Request-ID": "req-get-1"},
    )
    assert response.json() == {"data": {"passwordPolicy": {"minLength": 8}}}
    line = line_of(logs, "req-get-1")
    assert (line["method"], line["operation"], line["outcome"]) == (
        "GET",
        "passwordPolicy",
        "OK",
    )


def test_invalid_api_key_logs_its_outcome_without_a_tenant(
    client: TestClient, logs: pytest.LogCaptureFixture
) -> None:
    client.post(
        "/graphql",
        json={"query": "{ __typename }"},
        headers={"X-API-Key": "usk_not_a_key_at_all", "X-Request-ID": "req-key-1"},
    )
    line = line_of(logs, "req-key-1")
    assert (line["status"], line["tenant"], line["outcome"]) == (
        401,
        None,
        "INVALID_API_KEY",
    )
    assert "usk_not_a_key_at_all" not in json.dumps(request_lines(logs))


# ---- X-Request-ID


def test_request_id_from_the_client_is_echoed_in_header_and_errors(acme: Api) -> None:
    result = post(
        acme,
        {"query": "{ me { email } }"},
        headers={"X-Request-ID": "client-id_1.2:3"},
    )
    assert result.error_code == "UNAUTHENTICATED"
    assert result.headers["x-request-id"] == "client-id_1.2:3"
    assert result.extensions["requestId"] == "client-id_1.2:3"


def test_request_id_is_made_when_the_client_sends_none(acme: Api) -> None:
    result = post(acme, {"query": "{ me { email } }"})
    made = result.headers["x-request-id"]
    assert GENERATED_ID.fullmatch(made)
    assert result.extensions["requestId"] == made


@pytest.mark.parametrize(
    "sent",
    ["x" * 200, "x" * 65, "with spaces", "semi;colon", "a/b", "<script>", ""],
    ids=["200 chars", "65 chars", "spaces", "semicolon", "slash", "markup", "empty"],
)
def test_invalid_request_id_is_replaced_by_a_made_one(acme: Api, sent: str) -> None:
    result = post(acme, {"query": "{ me { email } }"}, headers={"X-Request-ID": sent})
    made = result.headers["x-request-id"]
    assert made != sent
    assert GENERATED_ID.fullmatch(made)
    assert result.extensions["requestId"] == made


def test_every_request_gets_its_own_made_id(acme: Api) -> None:
    made = {
        post(acme, {"query": "{ __typename }"}).headers["x-request-id"]
        for _ in range(3)
    }
    assert len(made) == 3


def test_invalid_api_key_body_carries_the_request_id(client: TestClient) -> None:
    response = client.post(
        "/graphql",
        json={"query": "{ __typename }"},
        headers={"X-Request-ID": "req-401"},
    )
    assert response.status_code == 401
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "INVALID_API_KEY", "requestId": "req-401"}
    assert response.headers["x-request-id"] == "req-401"


def test_bad_request_body_carries_the_made_request_id(acme: Api) -> None:
    response = acme.client.post(
        "/graphql",
        content=b"{",
        headers={"X-API-Key": acme.api_key, "content-type": "application/json"},
    )
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]
