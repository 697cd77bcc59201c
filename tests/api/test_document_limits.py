"""Bounds on what one request may ask: depth, aliases, tokens, directives,
fragments, validation errors, body and URL size, and what production hides
(SECURITY.md A7, F; CONTRACT.md "Limits and protection")."""

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import graphql
import pytest
from starlette.testclient import TestClient
from starlette.types import Message

from app import create_app
from models.db import close_database
from provisioning import new_tenant
from settings import Settings
from tests.conftest import Api, Result, make_environ

T = TypeVar("T")
# Seconds. Generous for a slow, busy machine (3 s was seen to fail under load);
# the attacks these guard against (quadratic validation, huge literals) take
# many times longer when unbounded.
FAST = 10.0
MiB = 1024 * 1024


@contextlib.contextmanager
def tenant_api(environ: dict[str, str]) -> Iterator[Api]:
    """A running app for `environ` and a fresh tenant on it."""
    settings = Settings.from_env(environ)
    with TestClient(create_app(settings)) as client:
        yield Api(client, new_tenant(settings, "acme"), settings)
    close_database()


@pytest.fixture
def roomy_api(tmp_path: Path) -> Iterator[Api]:
    """Length and token caps raised, so the bounds behind them are reached."""
    environ = make_environ(
        tmp_path,
        USER_SERVICE_MAX_BODY_BYTES=str(4 * MiB),
        USER_SERVICE_MAX_QUERY_LENGTH=str(2 * MiB),
        USER_SERVICE_MAX_TOKENS="1000000",
    )
    with tenant_api(environ) as api:
        yield api


def timed(call: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    value = call()
    return value, time.perf_counter() - started


def codes(result: Result) -> list[str]:
    return [error["extensions"]["code"] for error in result.errors]


def messages(result: Result) -> list[str]:
    return [error["message"] for error in result.errors]


def post_bytes(api: Api, body: bytes) -> Result:
    response = api.client.post(
        "/graphql",
        content=body,
        headers={"X-API-Key": api.api_key, "content-type": "application/json"},
    )
    return Result(response.status_code, response.json(), response.headers)


def assert_refused_before_execution(result: Result, code: str) -> None:
    assert result.status == 200
    assert result.data is None
    assert set(codes(result)) == {code}, result.errors


def assert_bad_request(result: Result, status: int = 413) -> None:
    assert result.status == status, result.body
    assert result.headers["content-type"] == "application/json"
    assert codes(result) == ["BAD_REQUEST"]


def nested(field: str, depth: int, leaf: str) -> str:
    return f"{field}{{" * depth + leaf + "}" * depth


# ---- F1: depth ---------------------------------------------------------------


def test_introspection_nested_through_twelve_of_types_is_validation_failed(
    api: Api,
) -> None:
    query = "{ __schema { types { fields { type { " + nested("ofType", 12, "name")
    result = api.gql(query + " } } } } }")
    assert_refused_before_execution(result, "GRAPHQL_VALIDATION_FAILED")


def test_full_introspection_query_still_works_in_development(api: Api) -> None:
    query = graphql.get_introspection_query(descriptions=True)
    schema = api.gql(query).ok()["__schema"]
    names = {item["name"] for item in schema["types"]}
    assert {"User", "Role", "AuditEvent", "Query", "Mutation"} <= names


def test_six_hundred_nested_fields_are_refused_fast(api: Api) -> None:
    result, seconds = timed(lambda: api.gql("{" + nested("me", 600, "id") + "}"))
    assert_refused_before_execution(result, "GRAPHQL_PARSE_FAILED")
    assert len(result.errors) == 1
    assert seconds < FAST


def test_max_depth_setting_refuses_a_deeper_query(tmp_path: Path) -> None:
    # Depth counts the fields below the root ones: me 0, sessions 1, id 2.
    with tenant_api(make_environ(tmp_path, USER_SERVICE_MAX_DEPTH="1")) as api:
        result = api.gql("{ me { sessions { id } } }")
        assert_refused_before_execution(result, "GRAPHQL_VALIDATION_FAILED")
        assert api.gql("{ passwordPolicy { minLength } }").ok() == {
            "passwordPolicy": {"minLength": 8}
        }


# ---- F2: aliases -------------------------------------------------------------


def aliases(count: int) -> str:
    return "{ " + " ".join(f"a{n}: __typename" for n in range(count)) + " }"


def test_101_aliases_are_validation_failed_naming_the_limit(api: Api) -> None:
    result = api.gql(aliases(101))
    assert_refused_before_execution(result, "GRAPHQL_VALIDATION_FAILED")
    assert messages(result) == ["101 aliases found. Allowed: 15"]


def test_max_aliases_setting_allows_two_and_refuses_three(tmp_path: Path) -> None:
    with tenant_api(make_environ(tmp_path, USER_SERVICE_MAX_ALIASES="2")) as api:
        assert api.gql(aliases(2)).ok() == {"a0": "Query", "a1": "Query"}
        result = api.gql(aliases(3))
        assert_refused_before_execution(result, "GRAPHQL_VALIDATION_FAILED")
        assert messages(result) == ["3 aliases found. Allowed: 2"]


# ---- F4: tokens and source length ------------------------------------------------


def test_5000_typenames_are_refused_as_too_long(api: Api) -> None:
    response = api.client.post(
        "/graphql",
        json={"query": "{" + " __typename" * 5000 + "}"},
        headers={"X-API-Key": api.api_key},
    )
    result = Result(response.status_code, response.json(), response.headers)
    assert_bad_request(result)


def test_5000_typenames_within_the_length_cap_stop_at_the_token_limit(
    tmp_path: Path,
) -> None:
    environ = make_environ(tmp_path, USER_SERVICE_MAX_QUERY_LENGTH="60000")
    with tenant_api(environ) as api:
        result = api.gql("{" + " __typename" * 5000 + "}")
    assert_refused_before_execution(result, "GRAPHQL_PARSE_FAILED")
    assert messages(result) == [
        "Syntax Error: Document contains more than 1000 tokens. Parsing aborted."
    ]


def test_5000_short_fields_stop_at_the_token_limit(api: Api) -> None:
    result = api.gql("{" + " a" * 5000 + "}")
    assert_refused_before_execution(result, "GRAPHQL_PARSE_FAILED")
    assert len(result.errors) == 1
    assert "1000 tokens" in messages(result)[0]


def test_max_tokens_setting_refuses_a_longer_document(tmp_path: Path) -> None:
    with tenant_api(make_environ(tmp_path, USER_SERVICE_MAX_TOKENS="10")) as api:
        assert api.gql("{ __typename }").ok() == {"__typename": "Query"}
        result = api.gql("{ " + "__typename " * 10 + "}")
    assert_refused_before_execution(result, "GRAPHQL_PARSE_FAILED")
    assert "10 tokens" in messages(result)[0]


def test_20_mb_string_literal_is_413_fast(api: Api) -> None:
    literal = "A" * (20 * MiB)
    body = json.dumps(
        {"query": f'{{ passwordPolicy(x: "{literal}") {{ minLength }} }}'}
    )
    result, seconds = timed(lambda: post_bytes(api, body.encode()))
    assert_bad_request(result)
    assert seconds < FAST


def test_max_query_length_setting_refuses_a_longer_document(tmp_path: Path) -> None:
    environ = make_environ(tmp_path, USER_SERVICE_MAX_QUERY_LENGTH="20")
    with tenant_api(environ) as api:
        assert api.gql("{ __typename }").ok() == {"__typename": "Query"}
        result = api.gql("{ passwordPolicy { minLength } }")
    assert_bad_request(result)


# ---- F5: directives ------------------------------------------------------------


def test_ten_unknown_directives_are_one_validation_error(api: Api) -> None:
    result, seconds = timed(lambda: api.gql("{ __typename" + " @aa" * 10 + " }"))
    assert_refused_before_execution(result, "GRAPHQL_VALIDATION_FAILED")
    assert len(result.errors) == 1, messages(result)
    assert seconds < FAST


def test_ten_thousand_directives_are_refused_fast_with_one_error(api: Api) -> None:
    response, seconds = timed(
        lambda: api.client.post(
            "/graphql",
            json={"query": "{ __typename" + " @aa" * 10_000 + " }"},
            headers={"X-API-Key": api.api_key},
        )
    )
    result = Result(response.status_code, response.json(), response.headers)
    assert_bad_request(result)
    assert seconds < FAST


def test_ten_thousand_directives_within_raised_caps_are_few_errors_fast(
    roomy_api: Api,
) -> None:
    query = "{ __typename" + " @aa" * 10_000 + " }"
    result, seconds = timed(lambda: roomy_api.gql(query))
    assert_refused_before_execution(result, "GRAPHQL_VALIDATION_FAILED")
    assert len(result.errors) <= 101
    assert seconds < FAST


def test_max_directives_setting_allows_two_and_refuses_three(tmp_path: Path) -> None:
    field = "__typename @include(if: true)"
    with tenant_api(make_environ(tmp_path, USER_SERVICE_MAX_DIRECTIVES="2")) as api:
        assert api.gql(f"{{ a: {field} b: {field} }}").ok() == {
            "a": "Query",
            "b": "Query",
        }
        result = api.gql(f"{{ a: {field} b: {field} c: {field} }}")
    assert_refused_before_execution(result, "GRAPHQL_VALIDATION_FAILED")
    assert messages(result) == ["A document may hold at most 2 directives."]


# ---- F6, F7: duplicated fields, circular fragments --------------------------------


def test_2000_duplicated_me_fields_are_one_error_fast(api: Api) -> None:
    result, seconds = timed(lambda: api.gql("{" + "me{id}" * 2000 + "}"))
    assert_refused_before_execution(result, "GRAPHQL_PARSE_FAILED")
    assert len(result.errors) == 1
    assert seconds < FAST


CIRCULAR_FRAGMENTS = {
    "two": "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
    "self": "query { ...A } fragment A on Query { __typename ...A }",
    "three": (
        "query { ...A } fragment A on Query { ...B } "
        "fragment B on Query { ...C } fragment C on Query { ...A }"
    ),
    "through a field": (
        "query { me { ...U } } fragment U on User { sessions { id } ...V } "
        "fragment V on User { ...U }"
    ),
}


@pytest.mark.parametrize(
    "query", list(CIRCULAR_FRAGMENTS.values()), ids=list(CIRCULAR_FRAGMENTS)
)
def test_circular_fragments_are_validation_failed_fast(api: Api, query: str) -> None:
    result, seconds = timed(lambda: api.gql(query))
    assert_refused_before_execution(result, "GRAPHQL_VALIDATION_FAILED")
    assert seconds < FAST


# ---- F9: floods of validation errors -------------------------------------------------


def unknown_fields(count: int) -> str:
    return "{ " + " ".join(f"f{n}" for n in range(count)) + " }"


def test_1000_unknown_fields_stop_at_the_token_limit_with_one_error(
    api: Api,
) -> None:
    result = api.gql(unknown_fields(1000))
    assert_refused_before_execution(result, "GRAPHQL_PARSE_FAILED")
    assert len(result.errors) == 1


def test_1000_unknown_fields_within_raised_caps_are_at_most_101_errors(
    roomy_api: Api,
) -> None:
    result, seconds = timed(lambda: roomy_api.gql(unknown_fields(1000)))
    assert_refused_before_execution(result, "GRAPHQL_VALIDATION_FAILED")
    assert len(result.errors) == 101
    assert "Too many validation errors" in messages(result)[-1]
    assert seconds < FAST


def test_1000_distinct_unknown_directives_are_at_most_101_errors(
    roomy_api: Api,
) -> None:
    query = "{ __typename " + " ".join(f"@d{n}" for n in range(1000)) + " }"
    result, seconds = timed(lambda: roomy_api.gql(query))
    assert_refused_before_execution(result, "GRAPHQL_VALIDATION_FAILED")
    assert len(result.errors) <= 101
    assert seconds < FAST


# ---- F10, A7: body, variables and URL size ----------------------------------------


def test_2_mib_body_is_413_bad_request_json(api: Api) -> None:
    body = json.dumps({"query": "{ __typename }", "padding": "x" * (2 * MiB)})
    result, seconds = timed(lambda: post_bytes(api, body.encode()))
    assert_bad_request(result)
    assert seconds < FAST


def test_2_mib_body_streamed_without_content_length_is_413(api: Api) -> None:
    chunk = b" " * 65536

    def body() -> Iterator[bytes]:
        yield b'{"query": "{ __typename }"'
        for _ in range(32):
            yield chunk
        yield b"}"

    response = api.client.post(
        "/graphql",
        content=body(),
        headers={"X-API-Key": api.api_key, "content-type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert_bad_request(Result(response.status_code, response.json(), response.headers))


def test_1_mib_string_variable_is_413(api: Api) -> None:
    result, seconds = timed(
        lambda: api.gql(
            "mutation($email: String!, $password: String!) {"
            " login(email: $email, password: $password) { accessToken } }",
            {"email": "ann@x.io", "password": "x" * MiB},
        )
    )
    assert_bad_request(result)
    assert seconds < FAST


def test_5_mb_variables_object_is_413(api: Api) -> None:
    variables = {f"v{n}": "x" * 1000 for n in range(5000)}
    assert_bad_request(api.gql("{ __typename }", variables))


def test_max_body_bytes_setting_refuses_a_larger_body(tmp_path: Path) -> None:
    environ = make_environ(tmp_path, USER_SERVICE_MAX_BODY_BYTES="100")
    with tenant_api(environ) as api:
        assert api.gql("{ __typename }").ok() == {"__typename": "Query"}
        assert_bad_request(api.gql("{ __typename }", {"padding": "x" * 100}))


DEEP_BODIES = {
    "array": b"[" * 100_000 + b"]" * 100_000,
    "object": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "variables": b'{"query": "{ __typename }", "variables": {"a": '
    + b"[" * 100_000
    + b"]" * 100_000
    + b"}}",
}


@pytest.mark.parametrize("body", list(DEEP_BODIES.values()), ids=list(DEEP_BODIES))
def test_json_nested_100000_levels_within_the_body_cap_is_400_bad_request(
    roomy_api: Api, body: bytes
) -> None:
    result, seconds = timed(lambda: post_bytes(roomy_api, body))
    assert_bad_request(result, status=400)
    assert seconds < FAST


def get_with_raw_query_string(api: Api, query_string: bytes) -> Result:
    """GET past httpx, whose URLs stop at 64 KiB: the ASGI app called directly."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("testclient", 50000),
        "root_path": "",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": query_string,
        "headers": [
            (b"host", b"testserver"),
            (b"x-api-key", api.api_key.encode()),
            (b"accept", b"application/json"),
        ],
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    async def call() -> None:
        await api.client.app(scope, receive, send)

    assert api.client.portal is not None  # inside the client's `with`
    api.client.portal.call(call)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(
        m.get("body", b"") for m in sent if m["type"] == "http.response.body"
    )
    headers = {name.decode(): value.decode() for name, value in start["headers"]}
    return Result(start["status"], json.loads(body), headers)


def test_get_with_a_70_kb_query_string_is_414_bad_request_json(api: Api) -> None:
    query_string = b"query=%7B__typename%7D" + b"%20" * (70_000 // 3)
    result, seconds = timed(lambda: get_with_raw_query_string(api, query_string))
    assert_bad_request(result, status=414)
    assert seconds < FAST


def test_get_with_a_short_query_string_passes_the_url_cap(api: Api) -> None:
    result = get_with_raw_query_string(api, b"query=%7B__typename%7D")
    assert result.ok() == {"__typename": "Query"}


# ---- G3: production suggests no names ---------------------------------------------

TYPOS: dict[str, str] = {
    "fragment type condition": "{ ... on Qury { __typename } }",
    "named fragment type": "query { ...F } fragment F on Usr { id }",
    "nested field": "{ me { emial } }",
    "argument": "{ auditLog(frist: 2) { edges { cursor } } }",
    "directive argument": "{ __typename @include(iff: true) }",
    "field of a connection": "{ auditLog { edgs { cursor } } }",
}


@pytest.fixture
def production_api(tmp_path: Path) -> Iterator[Api]:
    environ = make_environ(
        tmp_path,
        USER_SERVICE_ENV="production",
        USER_SERVICE_BCRYPT_COST="10",
    )
    with tenant_api(environ) as api:
        yield api


@pytest.mark.parametrize("query", list(TYPOS.values()), ids=list(TYPOS))
def test_development_suggests_names_for_the_typo(api: Api, query: str) -> None:
    assert "Did you mean" in " ".join(messages(api.gql(query)))


@pytest.mark.parametrize("query", list(TYPOS.values()), ids=list(TYPOS))
def test_production_suggests_no_names_for_the_typo(
    production_api: Api, query: str
) -> None:
    result = production_api.gql(query)
    assert_refused_before_execution(result, "GRAPHQL_VALIDATION_FAILED")
    assert [m for m in messages(result) if "Did you mean" in m] == []


def test_production_limit_errors_suggest_no_names(production_api: Api) -> None:
    query = "{ " + " ".join(f"a{n}: passwordPolcy {{ minLenght }}" for n in range(20))
    result = production_api.gql(query + " }")
    assert_refused_before_execution(result, "GRAPHQL_VALIDATION_FAILED")
    assert "Did you mean" not in json.dumps(result.body)
