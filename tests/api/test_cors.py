"""CORS: an allowlist of browser origins, never a reflected or `null` origin,
and preflights answered before the API-key check (SECURITY.md B3, B4)."""

from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from app import create_app
from models.db import close_database
from settings import DEFAULT_DEV_API_KEY, Settings
from tests.conftest import make_environ

APP_ORIGIN = "https://app.example"
TYPENAME = {"query": "{ __typename }"}
UNLISTED_ORIGINS = [
    "https://evil.example",
    "null",
    "http://app.example",  # another scheme
    "https://app.example:8443",  # another port
    "https://app.example.evil.example",
    "https://evil.example/https://app.example",
]


@pytest.fixture
def cors_client(tmp_path: Path) -> Iterator[TestClient]:
    environ = make_environ(tmp_path, USER_SERVICE_CORS_ORIGINS=APP_ORIGIN)
    with TestClient(create_app(Settings.from_env(environ))) as client:
        yield client
    close_database()


def preflight(
    client: TestClient,
    origin: str,
    *,
    method: str = "POST",
    headers: str = "x-api-key, authorization, content-type",
) -> httpx.Response:
    return client.options(
        "/graphql",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
    )


def listed(value: str) -> set[str]:
    return {part.strip().lower() for part in value.split(",")}


def assert_no_wildcard_with_credentials(response: httpx.Response) -> None:
    credentials = response.headers.get("access-control-allow-credentials", "")
    if credentials.lower() == "true":
        assert response.headers.get("access-control-allow-origin") != "*"


def assert_refused_preflight(response: httpx.Response) -> None:
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-credentials" not in response.headers


# ---- B3: only listed origins ----------------------------------------------------


@pytest.mark.parametrize("origin", UNLISTED_ORIGINS)
def test_preflight_from_an_unlisted_origin_gets_no_allow_origin(
    cors_client: TestClient, origin: str
) -> None:
    assert_refused_preflight(preflight(cors_client, origin))


@pytest.mark.parametrize("origin", [APP_ORIGIN, "https://evil.example", "null"])
def test_preflight_without_configured_origins_gets_no_allow_origin(
    client: TestClient, origin: str
) -> None:
    assert_refused_preflight(preflight(client, origin))


def test_preflight_from_the_listed_origin_allows_exactly_that_origin(
    cors_client: TestClient,
) -> None:
    response = preflight(cors_client, APP_ORIGIN)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "origin" in listed(response.headers["vary"])
    assert "POST" in response.headers["access-control-allow-methods"]
    assert_no_wildcard_with_credentials(response)


def test_preflight_from_the_listed_origin_allows_the_api_headers(
    cors_client: TestClient,
) -> None:
    response = preflight(cors_client, APP_ORIGIN)
    allowed = listed(response.headers["access-control-allow-headers"])
    assert {"x-api-key", "authorization", "content-type"} <= allowed


def test_preflight_asking_for_an_unlisted_header_is_refused(
    cors_client: TestClient,
) -> None:
    response = preflight(cors_client, APP_ORIGIN, headers="x-api-key, x-evil")
    assert response.status_code == 400


def test_preflight_asking_for_an_unlisted_method_is_refused(
    cors_client: TestClient,
) -> None:
    response = preflight(cors_client, APP_ORIGIN, method="DELETE")
    assert response.status_code == 400


# ---- B4: preflights need no API key ----------------------------------------------


def test_preflight_without_api_key_is_answered_not_401(
    cors_client: TestClient,
) -> None:
    response = preflight(cors_client, APP_ORIGIN)
    assert response.status_code == 200
    assert "INVALID_API_KEY" not in response.text


# ---- actual requests -------------------------------------------------------------


def test_post_from_the_listed_origin_carries_allow_origin(
    cors_client: TestClient,
) -> None:
    response = cors_client.post(
        "/graphql",
        json=TYPENAME,
        headers={"Origin": APP_ORIGIN, "X-API-Key": DEFAULT_DEV_API_KEY},
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "origin" in listed(response.headers["vary"])
    assert "x-request-id" in listed(response.headers["access-control-expose-headers"])
    assert_no_wildcard_with_credentials(response)


def test_401_to_the_listed_origin_is_readable_by_the_browser(
    cors_client: TestClient,
) -> None:
    response = cors_client.post(
        "/graphql", json=TYPENAME, headers={"Origin": APP_ORIGIN}
    )
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "INVALID_API_KEY"
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN


@pytest.mark.parametrize("origin", ["https://evil.example", "null"])
def test_post_from_an_unlisted_origin_carries_no_allow_origin(
    cors_client: TestClient, origin: str
) -> None:
    response = cors_client.post(
        "/graphql",
        json=TYPENAME,
        headers={"Origin": origin, "X-API-Key": DEFAULT_DEV_API_KEY},
    )
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-credentials" not in response.headers
