"""The HTTP edge through the real app: the API-key gate, methods, headers,
malformed requests, WebSocket refusal, and what production hides
(SECURITY.md A, B2, G; CONTRACT.md "HTTP" and "Errors")."""

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app import create_app
from errors import InternalServerError
from models import ApiKey, Tenant, database
from models.db import close_database
from provisioning import add_api_key, new_tenant
from settings import DEFAULT_DEV_API_KEY, Settings
from tests.conftest import PASSWORD, Api, Result, make_environ

Headers = list[tuple[str, str]]
Send = Callable[[TestClient, dict[str, str]], httpx.Response]

TYPENAME = "{ __typename }"
VICTIM = "mallory@x.io"
SIGN_UP = (
    f'mutation {{ signUp(input: {{email: "{VICTIM}", password: "{PASSWORD}"}})'
    " { id } }"
)
PRODUCTION = {"USER_SERVICE_ENV": "production", "USER_SERVICE_BCRYPT_COST": "10"}
INTERNALS = ("sqlite", "peewee", "Traceback", "OperationalError", "no such table")


def result_of(response: httpx.Response) -> Result:
    return Result(response.status_code, response.json(), response.headers)


def post_json_bytes(
    client: TestClient, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    return client.post(
        "/graphql",
        content=body,
        headers={**headers, "content-type": "application/json"},
    )


def assert_bad_request(response: httpx.Response, *, status: int = 400) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert result_of(response).error_code == "BAD_REQUEST"


def assert_invalid_api_key(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert result_of(response).error_code == "INVALID_API_KEY"
    assert "data" not in response.json()


def assert_not_signed_up(api: Api, email: str = VICTIM) -> None:
    """The account does not exist: its login fails like any unknown email."""
    assert api.login(email).error_code == "UNAUTHENTICATED"


def messages(result: Result) -> list[str]:
    return [error["message"] for error in result.errors]


def codes(result: Result) -> set[str]:
    return {error["extensions"]["code"] for error in result.errors}


@pytest.fixture
def key_headers(settings: Settings) -> dict[str, str]:
    return {"X-API-Key": settings.dev_api_key}


def tenant_api(environ: dict[str, str], **client_options: Any) -> Iterator[Api]:
    """A running app for `environ` and a fresh tenant 'acme' on it."""
    settings = Settings.from_env(environ)
    with TestClient(create_app(settings), **client_options) as client:
        yield Api(client, new_tenant(settings, "acme"), settings)
    close_database()


@pytest.fixture
def production_api_with_introspection(tmp_path: Path) -> Iterator[Api]:
    environ = make_environ(tmp_path, **PRODUCTION, USER_SERVICE_INTROSPECTION="true")
    yield from tenant_api(environ)


@pytest.fixture
def fragile_api(environ: dict[str, str]) -> Iterator[Api]:
    """Like `api`, but Starlette's last-resort 500 reaches the test as a response."""
    yield from tenant_api(environ, raise_server_exceptions=False)


# ---- A1: every operation needs a live key, sent exactly ----------------------

BAD_KEYS: dict[str, Callable[[str], Headers]] = {
    "missing": lambda key: [],
    "unknown": lambda key: [("X-API-Key", "usk_" + "Q" * 43)],
    "empty": lambda key: [("X-API-Key", "")],
    "leading space": lambda key: [("X-API-Key", f" {key}")],
    "trailing space": lambda key: [("X-API-Key", f"{key} ")],
    "surrounding tabs": lambda key: [("X-API-Key", f"\t{key}\t")],
    "upper case": lambda key: [("X-API-Key", key.upper())],
    "one letter capitalised": lambda key: [("X-API-Key", key.capitalize())],
    "valid and unknown header": lambda key: [
        ("X-API-Key", key),
        ("X-API-Key", "usk_" + "Q" * 43),
    ],
    "other header name": lambda key: [("API-Key", key)],
    "as a bearer token": lambda key: [("Authorization", f"Bearer {key}")],
}
bad_keys = pytest.mark.parametrize(
    "bad_key_headers",
    [BAD_KEYS[name](DEFAULT_DEV_API_KEY) for name in BAD_KEYS],
    ids=list(BAD_KEYS),
)


@bad_keys
def test_query_with_bad_api_key_is_401_invalid_api_key(
    client: TestClient, bad_key_headers: Headers
) -> None:
    response = client.post(
        "/graphql", json={"query": TYPENAME}, headers=bad_key_headers
    )
    assert_invalid_api_key(response)


@bad_keys
def test_sign_up_with_bad_api_key_creates_no_account(
    client: TestClient, api: Api, bad_key_headers: Headers
) -> None:
    response = client.post("/graphql", json={"query": SIGN_UP}, headers=bad_key_headers)
    assert_invalid_api_key(response)
    assert_not_signed_up(api)


@pytest.fixture
def revoked_key(api: Api) -> tuple[str, Api]:
    """A revoked key of tenant 'acme', and acme's view through its other, live key."""
    acme = api.tenant("acme")
    tenant = Tenant.by_name("acme")
    assert tenant is not None
    [first] = ApiKey.of_tenant(tenant)  # the key `tenant create` made
    live = Api(acme.client, add_api_key(tenant), acme.settings)
    assert ApiKey.revoke(first.id)
    return acme.api_key, live


def test_query_with_revoked_api_key_is_401_invalid_api_key(
    client: TestClient, revoked_key: tuple[str, Api]
) -> None:
    key, _ = revoked_key
    response = client.post(
        "/graphql", json={"query": TYPENAME}, headers={"X-API-Key": key}
    )
    assert_invalid_api_key(response)


def test_sign_up_with_revoked_api_key_creates_no_account(
    client: TestClient, revoked_key: tuple[str, Api]
) -> None:
    key, live = revoked_key
    response = client.post(
        "/graphql", json={"query": SIGN_UP}, headers={"X-API-Key": key}
    )
    assert_invalid_api_key(response)
    assert_not_signed_up(live)


def test_other_live_key_of_a_tenant_keeps_working_after_a_revocation(
    revoked_key: tuple[str, Api],
) -> None:
    _, live = revoked_key
    assert live.gql(TYPENAME).ok() == {"__typename": "Query"}


# ---- A2: the key is read from the X-API-Key header only ----------------------


@pytest.mark.parametrize("name", ["api_key", "apiKey", "X-API-Key", "key"])
def test_api_key_in_query_string_is_401(client: TestClient, name: str) -> None:
    response = client.get(
        "/graphql", params={"query": TYPENAME, name: DEFAULT_DEV_API_KEY}
    )
    assert_invalid_api_key(response)


@pytest.mark.parametrize(
    "body",
    [
        {"X-API-Key": DEFAULT_DEV_API_KEY},
        {"api_key": DEFAULT_DEV_API_KEY},
        {"apiKey": DEFAULT_DEV_API_KEY},
        {"extensions": {"X-API-Key": DEFAULT_DEV_API_KEY}},
    ],
    ids=["X-API-Key", "api_key", "apiKey", "extensions"],
)
def test_api_key_in_json_body_is_401(client: TestClient, body: dict[str, Any]) -> None:
    response = client.post("/graphql", json={"query": TYPENAME, **body})
    assert_invalid_api_key(response)


def test_api_key_in_cookie_is_401(client: TestClient) -> None:
    key = DEFAULT_DEV_API_KEY
    cookie = f"X-API-Key={key}; api_key={key}; apiKey={key}"
    response = client.post(
        "/graphql", json={"query": TYPENAME}, headers={"Cookie": cookie}
    )
    assert_invalid_api_key(response)


# ---- A3: GraphQL over WebSocket is not served ---------------------------------

subprotocols = pytest.mark.parametrize(
    "subprotocol", ["graphql-transport-ws", "graphql-ws"]
)


@subprotocols
@pytest.mark.parametrize("path", ["/graphql", "/graphql/ws", "/"])
def test_websocket_without_key_is_refused_as_policy_violation(
    client: TestClient, subprotocol: str, path: str
) -> None:
    with (
        pytest.raises(WebSocketDisconnect) as refusal,
        client.websocket_connect(path, subprotocols=[subprotocol]),
    ):
        pass
    assert refusal.value.code == 1008


@subprotocols
def test_websocket_with_valid_key_is_refused_before_accept(
    client: TestClient, key_headers: dict[str, str], subprotocol: str
) -> None:
    # The TestClient raises on connect only when the app closes instead of accepting.
    with (
        pytest.raises(WebSocketDisconnect),
        client.websocket_connect(
            "/graphql", subprotocols=[subprotocol], headers=key_headers
        ),
    ):
        pass


# ---- A6: only GET, POST (and OPTIONS) ---------------------------------------


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "TRACE"])
def test_other_methods_are_405_bad_request(
    client: TestClient, key_headers: dict[str, str], method: str
) -> None:
    response = client.request(method, "/graphql", headers=key_headers)
    assert_bad_request(response, status=405)
    allowed = {part.strip() for part in response.headers["allow"].split(",")}
    assert {"GET", "POST"} <= allowed
    assert not {"PUT", "DELETE", "PATCH", "TRACE"} & allowed


# ---- A8: security headers on every answer -------------------------------------

RESPONSES: dict[str, Send] = {
    "data": lambda client, key: client.post(
        "/graphql", json={"query": TYPENAME}, headers=key
    ),
    "GET query": lambda client, key: client.get(
        "/graphql", params={"query": TYPENAME}, headers=key
    ),
    "parse error": lambda client, key: client.post(
        "/graphql", json={"query": "{"}, headers=key
    ),
    "missing key": lambda client, key: client.post(
        "/graphql", json={"query": TYPENAME}
    ),
    "malformed JSON": lambda client, key: post_json_bytes(client, b"{", key),
    "wrong method": lambda client, key: client.put("/graphql", headers=key),
    "unknown path": lambda client, key: client.get("/nowhere", headers=key),
    "healthz": lambda client, key: client.get("/healthz"),
}


@pytest.mark.parametrize("send", list(RESPONSES.values()), ids=list(RESPONSES))
def test_response_forbids_sniffing_and_caching(
    client: TestClient, key_headers: dict[str, str], send: Send
) -> None:
    response = send(client, key_headers)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


# ---- A9: health checks say nothing about the inside ---------------------------


def leaks_in(body: str, tmp_path: Path) -> list[str]:
    words = [str(tmp_path), "users.db", "sqlite", "postgres", "0.1.0", "python"]
    words += ["starlette", "uvicorn", "strawberry", "peewee", "version"]
    return [word for word in words if word.lower() in body.lower()]


def test_healthz_answers_ok_without_key_and_leaks_nothing(
    client: TestClient, tmp_path: Path
) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert leaks_in(response.text, tmp_path) == []


def test_readyz_answers_ready_without_key_and_leaks_nothing(
    client: TestClient, tmp_path: Path
) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}
    assert leaks_in(response.text, tmp_path) == []


# ---- B2: no cookies anywhere ---------------------------------------------------


def test_login_response_sets_no_cookie(api: Api) -> None:
    api.sign_up("ann@x.io").ok()
    response = api.login("ann@x.io")
    assert response.ok()["login"]["tokenType"] == "Bearer"
    assert "set-cookie" not in response.headers
    assert response.headers["cache-control"] == "no-store"


def test_access_token_in_cookie_is_ignored(
    client: TestClient, api: Api, key_headers: dict[str, str]
) -> None:
    token = api.user("ann@x.io")
    cookie = f"Authorization=Bearer {token}; accessToken={token}; token={token}"
    response = client.post(
        "/graphql",
        json={"query": "{ me { email } }"},
        headers={**key_headers, "Cookie": cookie},
    )
    assert result_of(response).error_code == "UNAUTHENTICATED"


# ---- G6 / B1: malformed requests get JSON and BAD_REQUEST ----------------------


@pytest.mark.parametrize(
    "body",
    [b"{", b'{"query": "{ __typename }"', b"", b"not json", b"{'query': 1}"],
    ids=["truncated", "unclosed", "empty", "text", "single quotes"],
)
def test_invalid_json_is_400_bad_request(
    client: TestClient, key_headers: dict[str, str], body: bytes
) -> None:
    assert_bad_request(post_json_bytes(client, body, key_headers))


def test_non_utf8_body_is_400_bad_request(
    client: TestClient, key_headers: dict[str, str]
) -> None:
    body = b'{"query": "{ __typename } # \xff\xfe\xc3"}'
    assert_bad_request(post_json_bytes(client, body, key_headers))


@pytest.mark.parametrize("body", [b"null", b"5", b'"{ __typename }"', b"true"], ids=str)
def test_json_body_that_is_not_an_object_is_400_bad_request(
    client: TestClient, key_headers: dict[str, str], body: bytes
) -> None:
    assert_bad_request(post_json_bytes(client, body, key_headers))


def test_batch_of_operations_is_400_bad_request_and_runs_none(
    client: TestClient, api: Api, key_headers: dict[str, str]
) -> None:
    batch = [{"query": SIGN_UP}, {"query": TYPENAME}]
    response = client.post("/graphql", json=batch, headers=key_headers)
    assert_bad_request(response)
    assert_not_signed_up(api)


@pytest.mark.parametrize(
    "operation",
    [
        {"query": 5},
        {"query": ["{ __typename }"]},
        {"query": {"text": "{ __typename }"}},
        {"query": TYPENAME, "variables": [1]},
        {"query": TYPENAME, "variables": "{}"},
        {"query": TYPENAME, "variables": 5},
        {"query": TYPENAME, "operationName": 5},
        {"query": TYPENAME, "extensions": 5},
    ],
    ids=[
        "query number",
        "query list",
        "query object",
        "variables list",
        "variables string",
        "variables number",
        "operationName number",
        "extensions number",
    ],
)
def test_operation_with_wrong_field_types_is_400_bad_request(
    client: TestClient, key_headers: dict[str, str], operation: dict[str, Any]
) -> None:
    response = client.post("/graphql", json=operation, headers=key_headers)
    assert_bad_request(response)


def test_body_nested_100000_levels_is_4xx_bad_request_not_500(
    client: TestClient, key_headers: dict[str, str]
) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    response = post_json_bytes(client, body, key_headers)
    # 400 for the nesting, or 413 once the body cap sees the size first.
    assert response.status_code in (400, 413), response.text
    assert result_of(response).error_code == "BAD_REQUEST"


def test_variables_nested_30000_levels_are_400_bad_request(
    client: TestClient, key_headers: dict[str, str]
) -> None:
    nested = b"[" * 30_000 + b"]" * 30_000  # under the 64 KiB body cap
    body = b'{"query": "{ __typename }", "variables": {"a": ' + nested + b"}}"
    assert_bad_request(post_json_bytes(client, body, key_headers))


SIMPLE_REQUESTS: dict[str, dict[str, Any]] = {
    "form-urlencoded": {"data": {"query": SIGN_UP}},
    "multipart": {"files": {"query": (None, SIGN_UP)}},
    "text/plain": {
        "content": json.dumps({"query": SIGN_UP}).encode(),
        "headers": {"content-type": "text/plain"},
    },
    "no content type": {"content": b'{"query": "{ __typename }"}'},
    "application/graphql": {
        "content": SIGN_UP.encode(),
        "headers": {"content-type": "application/graphql"},
    },
}


@pytest.mark.parametrize(
    "request_options", list(SIMPLE_REQUESTS.values()), ids=list(SIMPLE_REQUESTS)
)
def test_post_with_unsupported_content_type_is_refused_and_creates_no_account(
    client: TestClient,
    api: Api,
    key_headers: dict[str, str],
    request_options: dict[str, Any],
) -> None:
    options = dict(request_options)
    headers = {**key_headers, **options.pop("headers", {})}
    response = client.post("/graphql", headers=headers, **options)
    # 400, or 415 Unsupported Media Type: both are the contract's 4xx.
    assert response.status_code in (400, 415), response.text
    assert result_of(response).error_code == "BAD_REQUEST"
    assert_not_signed_up(api)


def test_mutation_over_get_is_refused_and_creates_no_account(
    client: TestClient, api: Api, key_headers: dict[str, str]
) -> None:
    response = client.get("/graphql", params={"query": SIGN_UP}, headers=key_headers)
    # GraphQL over HTTP answers 405 here; 400 is also the contract's 4xx.
    assert response.status_code in (400, 405), response.text
    assert result_of(response).error_code == "BAD_REQUEST"
    assert_not_signed_up(api)


def test_query_over_get_with_key_answers_data(
    client: TestClient, key_headers: dict[str, str]
) -> None:
    response = client.get("/graphql", params={"query": TYPENAME}, headers=key_headers)
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("variables", ["[1]", "{", "7"])
def test_query_over_get_with_variables_not_an_object_is_400_bad_request(
    client: TestClient, key_headers: dict[str, str], variables: str
) -> None:
    params = {"query": TYPENAME, "variables": variables}
    response = client.get("/graphql", params=params, headers=key_headers)
    assert_bad_request(response)
    assert "variables" in result_of(response).errors[0]["message"]


def test_unknown_path_is_404_not_found_json(
    client: TestClient, key_headers: dict[str, str]
) -> None:
    response = client.get("/graphql-v2", headers=key_headers)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert result_of(response).error_code == "NOT_FOUND"


@pytest.mark.parametrize("path", ["/", "/docs", "/graphql/", "/healthz/", "/x/y"])
@pytest.mark.parametrize("accept", ["text/html", "*/*"])
def test_unknown_path_is_404_without_an_api_key(
    client: TestClient, path: str, accept: str
) -> None:
    response = client.get(path, headers={"Accept": accept}, follow_redirects=False)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert result_of(response).error_code == "NOT_FOUND"
    assert response.headers["cache-control"] == "no-store"


def test_post_to_unknown_path_is_404_and_runs_nothing(api: Api) -> None:
    body = {"query": SIGN_UP}
    response = api.client.post("/graphql/", json=body, follow_redirects=False)
    assert response.status_code == 404
    assert_not_signed_up(api)


def test_document_that_does_not_parse_is_graphql_parse_failed(api: Api) -> None:
    result = api.gql("{ passwordPolicy { minLength }")
    assert result.status == 200
    assert result.data is None
    assert result.error_code == "GRAPHQL_PARSE_FAILED"


def test_unknown_field_is_graphql_validation_failed(api: Api) -> None:
    result = api.gql("{ passwordHash }")
    assert result.status == 200
    assert result.data is None
    assert result.error_code == "GRAPHQL_VALIDATION_FAILED"


def test_variable_of_wrong_type_is_refused_without_echoing_its_value(
    api: Api,
) -> None:
    result = api.gql(
        "mutation($email: String!, $password: String!) {"
        " login(email: $email, password: $password) { accessToken } }",
        {"email": "ann@x.io", "password": 98765432123},
    )
    assert result.data is None
    assert result.error_code == "GRAPHQL_VALIDATION_FAILED"
    # Error messages never hold variables: this one could be a password.
    assert "98765432123" not in str(result.errors)


# ---- G1-G3: production hides the schema --------------------------------------

INTROSPECTION = {
    "__schema": "{ __schema { types { name } } }",
    "__type": '{ __type(name: "User") { name } }',
    "aliased": "{ s: __schema { queryType { name } } }",
    "in a fragment": (
        "query { ...F } fragment F on Query { __schema { types { name } } }"
    ),
    "beside a field": '{ passwordPolicy { minLength } __type(name: "Role") { name } }',
}
TYPOS: dict[str, tuple[str, dict[str, Any] | None, str]] = {
    "field": ("{ passwordPolicy { minLenght } }", None, "GRAPHQL_VALIDATION_FAILED"),
    "root field": (
        "{ passwordPolicyy { minLength } }",
        None,
        "GRAPHQL_VALIDATION_FAILED",
    ),
    "argument": (
        'mutation { login(emial: "a@x.io", email: "a@x.io", password: "x") '
        "{ accessToken } }",
        None,
        "GRAPHQL_VALIDATION_FAILED",
    ),
    "enum literal": (
        'mutation { signUp(input: {email: "a@x.io", password: "x", role: ADMN}) '
        "{ id } }",
        None,
        "GRAPHQL_VALIDATION_FAILED",
    ),
    # Variables are coerced against the schema before any resolver runs: a value
    # that does not fit is a validation failure, never an internal error.
    "enum in variables": (
        'mutation($role: Role) { signUp(input: {email: "a@x.io", password: "x", '
        "role: $role}) { id } }",
        {"role": "ADMN"},
        "GRAPHQL_VALIDATION_FAILED",
    ),
    "input field literal": (
        'mutation { signUp(input: {emial: "a@x.io", email: "a@x.io", '
        'password: "x"}) { id } }',
        None,
        "GRAPHQL_VALIDATION_FAILED",
    ),
    "input field in variables": (
        "mutation($input: SignUpInput!) { signUp(input: $input) { id } }",
        {"input": {"emial": "a@x.io", "email": "a@x.io", "password": "x"}},
        "GRAPHQL_VALIDATION_FAILED",
    ),
    "variable type name": (
        "mutation($input: SignUpInpt!) { signUp(input: $input) { id } }",
        {"input": {}},
        "GRAPHQL_VALIDATION_FAILED",
    ),
    "object without selection": (
        "{ passwordPolicy }",
        None,
        "GRAPHQL_VALIDATION_FAILED",
    ),
}


@pytest.fixture(scope="class")
def production_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One production app per test class: its tests only read."""
    tmp_path = tmp_path_factory.mktemp("production")
    yield from tenant_api(make_environ(tmp_path, **PRODUCTION))


class TestProduction:
    @pytest.mark.parametrize(
        "query", list(INTROSPECTION.values()), ids=list(INTROSPECTION)
    )
    def test_introspection_is_refused(self, production_api: Api, query: str) -> None:
        result = production_api.gql(query)
        assert result.status == 200
        assert result.data is None
        assert codes(result) == {"GRAPHQL_VALIDATION_FAILED"}

    def test_typename_is_still_answered(self, production_api: Api) -> None:
        assert production_api.gql(TYPENAME).ok() == {"__typename": "Query"}

    def test_client_without_key_gets_401_not_graphiql(
        self, production_api: Api
    ) -> None:
        response = production_api.client.get("/graphql", headers={"Accept": "*/*"})
        assert_invalid_api_key(response)
        assert "graphiql" not in response.text.lower()

    @pytest.mark.parametrize("accept", ["text/html", "text/html,*/*;q=0.8"])
    @pytest.mark.parametrize("with_key", [False, True], ids=["no key", "key"])
    def test_browser_learns_the_ide_is_off_in_json_naming_no_graphiql(
        self, production_api: Api, accept: str, with_key: bool
    ) -> None:
        headers = {"Accept": accept}
        if with_key:
            headers["X-API-Key"] = production_api.api_key
        response = production_api.client.get("/graphql", headers=headers)
        assert_bad_request(response)
        assert "in-browser IDE is off" in result_of(response).errors[0]["message"]
        assert "graphiql" not in response.text.lower()
        assert "<html" not in response.text.lower()

    def test_graphiql_assets_are_not_served(self, production_api: Api) -> None:
        response = production_api.client.get("/graphiql/graphiql.min.js")
        assert response.status_code == 404
        assert result_of(response).error_code == "NOT_FOUND"

    def test_client_with_key_and_no_query_gets_json_bad_request(
        self, production_api: Api
    ) -> None:
        headers = {"Accept": "*/*", "X-API-Key": production_api.api_key}
        response = production_api.client.get("/graphql", headers=headers)
        # A GET without a query: 400 or 404, the contract only fixes the code.
        assert 400 <= response.status_code < 500
        assert result_of(response).error_code == "BAD_REQUEST"

    @pytest.mark.parametrize(
        ("query", "variables", "code"), list(TYPOS.values()), ids=list(TYPOS)
    )
    def test_errors_never_suggest_names(
        self,
        production_api: Api,
        query: str,
        variables: dict[str, Any] | None,
        code: str,
    ) -> None:
        result = production_api.gql(query, variables)
        assert result.data is None
        assert codes(result) == {code}
        assert [m for m in messages(result) if "Did you mean" in m] == []


def test_production_with_introspection_setting_answers_schema(
    production_api_with_introspection: Api,
) -> None:
    api = production_api_with_introspection
    types = api.gql(INTROSPECTION["__schema"]).ok()["__schema"]["types"]
    assert {"User", "Role", "Query", "Mutation"} <= {item["name"] for item in types}
    assert api.gql(INTROSPECTION["__type"]).ok() == {"__type": {"name": "User"}}


def test_production_with_introspection_setting_still_serves_no_graphiql(
    production_api_with_introspection: Api,
) -> None:
    api = production_api_with_introspection
    response = api.client.get(
        "/graphql", headers={"Accept": "text/html", "X-API-Key": api.api_key}
    )
    assert response.headers["content-type"] == "application/json"
    assert "graphiql" not in response.text.lower()


def test_development_errors_keep_suggestions(api: Api) -> None:
    result = api.gql(TYPOS["field"][0])
    assert result.error_code == "GRAPHQL_VALIDATION_FAILED"
    assert "Did you mean 'minLength'" in result.errors[0]["message"]


# ---- GraphiQL in development ------------------------------------------------


def test_development_serves_graphiql_to_a_browser_without_key(
    client: TestClient,
) -> None:
    response = client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "GraphiQL" in response.text


def test_graphiql_page_loads_nothing_from_the_internet(client: TestClient) -> None:
    page = client.get("/graphql", headers={"Accept": "text/html"}).text
    sources = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", page)
    external = [url for url in sources if re.match(r"(?:https?:)?//", url)]
    assert external == []


# ---- G4: internal failures say nothing -----------------------------------------


def test_internal_failure_in_resolver_is_generic_internal_server_error(
    api: Api, tmp_path: Path
) -> None:
    # signUp writes its audit row in its transaction; the key check never reads
    # that table, so the failure happens inside the resolver.
    database.execute_sql('DROP TABLE "audit_event"')
    result = api.sign_up("ann@x.io")
    assert result.data is None
    assert result.error_code == "INTERNAL_SERVER_ERROR"
    assert messages(result) == [InternalServerError.default_message]
    body = str(result.body)
    assert [word for word in (*INTERNALS, str(tmp_path)) if word in body] == []


def test_internal_failure_outside_graphql_is_500_contract_json(
    fragile_api: Api, tmp_path: Path
) -> None:
    database.execute_sql('DROP TABLE "api_key"')
    response = fragile_api.client.post(
        "/graphql", json={"query": TYPENAME}, headers={"X-API-Key": "usk_any"}
    )
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert result_of(response).error_code == "INTERNAL_SERVER_ERROR"
    assert messages(result_of(response)) == [InternalServerError.default_message]
    assert [w for w in (*INTERNALS, str(tmp_path)) if w in response.text] == []


def test_internal_failure_outside_graphql_still_forbids_sniffing_and_caching(
    fragile_api: Api,
) -> None:
    database.execute_sql('DROP TABLE "api_key"')
    response = fragile_api.client.post(
        "/graphql", json={"query": TYPENAME}, headers={"X-API-Key": "usk_any"}
    )
    assert response.status_code == 500
    assert response.headers.get("x-content-type-options") == "nosniff"
    assert response.headers.get("cache-control") == "no-store"
