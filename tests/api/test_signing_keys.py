"""The published keys, rotation and retirement through HTTP and the command line.

The app runs in-process (TestClient); `signing-key` commands run as the operator
runs them, in another process on the same database, as another host would.
"""

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.conftest import Api, make_environ
from tests.servers import run_cli

ANN = "ann@x.io"
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k"}
WAIT_SECONDS = 10.0  # a process reads the keys again within 2 s


@pytest.fixture
def environ(tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    """conftest's environment, plus overrides from indirect parametrization."""
    return make_environ(tmp_path, **getattr(request, "param", {}))


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def published_kids(api: Api) -> list[str]:
    return [
        key["kid"] for key in api.client.get("/.well-known/jwks.json").json()["keys"]
    ]


def cli(api: Api, *args: str) -> str:
    done = run_cli(api_environ(api), "signing-key", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def api_environ(api: Api) -> dict[str, str]:
    settings = api.settings
    return make_environ(
        settings.data_dir,
        USER_SERVICE_DATABASE_URL=settings.database_url,
        USER_SERVICE_JWT_ALGORITHM=settings.jwt_algorithm,
        USER_SERVICE_SIGNING_KEY_PUBLISH_AHEAD=str(settings.signing_key_publish_ahead),
    )


def rotate(api: Api) -> str:
    """`signing-key rotate`; the new key's kid."""
    return cli(api, "rotate").split()[1]


def eventually(check: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while not (value := check()):
        assert time.monotonic() < deadline, "not within the wait"
        time.sleep(0.2)
    return value


def test_jwks_is_public_cacheable_and_holds_public_halves_only(api: Api) -> None:
    token = api.user(ANN)
    response = api.client.get("/.well-known/jwks.json")  # no API key
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    [key] = response.json()["keys"]
    assert (key["kid"], key["kty"], key["alg"], key["use"]) == (
        kid_of(token),
        "EC",
        "ES256",
        "sig",
    )
    assert not PRIVATE_MEMBERS & set(key)


def test_other_responses_stay_uncacheable(api: Api) -> None:
    assert api.me(api.user(ANN)).headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "environ", [{"USER_SERVICE_ISSUER": "https://users.example.com/"}], indirect=True
)
def test_discovery_names_the_issuer_and_where_its_keys_are(api: Api) -> None:
    response = api.client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    assert response.headers["cache-control"].startswith("public, max-age=")
    document = response.json()
    assert document["issuer"] == "https://users.example.com"
    assert document["jwks_uri"] == "https://users.example.com/.well-known/jwks.json"
    assert (
        jwt.decode(api.user(ANN), options={"verify_signature": False})["iss"]
        == "https://users.example.com"
    )


@pytest.mark.parametrize(
    ("environ", "kty"),
    [
        ({"USER_SERVICE_JWT_ALGORITHM": "EdDSA"}, "OKP"),
        ({"USER_SERVICE_JWT_ALGORITHM": "RS256"}, "RSA"),
    ],
    indirect=["environ"],
    ids=["EdDSA", "RS256"],
)
def test_the_configured_algorithm_signs_and_is_published(api: Api, kty: str) -> None:
    token = api.user(ANN)
    algorithm = api.settings.jwt_algorithm
    assert jwt.get_unverified_header(token)["alg"] == algorithm
    [key] = api.client.get("/.well-known/jwks.json").json()["keys"]
    assert (key["kty"], key["alg"], key["kid"]) == (kty, algorithm, kid_of(token))
    assert api.me(token).ok()["me"]["email"] == ANN


def test_rotation_publishes_the_new_key_at_once_but_signs_only_after_the_ahead(
    api: Api,
) -> None:
    old = kid_of(api.user(ANN))
    new = rotate(api)
    assert eventually(lambda: published_kids(api) == [old, new])
    time.sleep(2.5)  # past the process's refresh: it has read the new key
    assert kid_of(api.token(ANN)) == old  # the default 600 s are not over


@pytest.mark.parametrize(
    "environ", [{"USER_SERVICE_SIGNING_KEY_PUBLISH_AHEAD": "0"}], indirect=True
)
def test_after_rotation_new_tokens_use_the_new_key_and_old_ones_still_work(
    api: Api,
) -> None:
    old_token = api.user(ANN)
    new = rotate(api)
    new_token = eventually(
        lambda: (token := api.token(ANN)) and kid_of(token) == new and token
    )
    assert api.me(old_token).ok()["me"]["email"] == ANN
    assert api.me(new_token).ok()["me"]["email"] == ANN
    assert published_kids(api) == [kid_of(old_token), new]


def test_retiring_a_key_ends_its_tokens_at_once(api: Api) -> None:
    token = api.user(ANN)
    assert api.me(token).ok()["me"]["email"] == ANN
    rotate(api)
    assert "retired" in cli(api, "retire", kid_of(token))
    assert api.me(token).error_code == "UNAUTHENTICATED"  # no wait: the same query
    assert eventually(lambda: kid_of(token) not in published_kids(api))


def test_retiring_the_signing_key_lets_the_next_one_sign_at_once(api: Api) -> None:
    old = kid_of(api.user(ANN))
    new = rotate(api)  # published 600 s ahead
    cli(api, "retire", old)
    token = eventually(lambda: (t := api.token(ANN)) and kid_of(t) != old and t)
    assert kid_of(token) == new
    assert api.me(token).ok()["me"]["email"] == ANN


def test_retiring_every_key_makes_a_new_one_for_the_next_login(api: Api) -> None:
    old = kid_of(api.user(ANN))
    cli(api, "retire", old)
    token = eventually(lambda: (t := api.token(ANN)) and kid_of(t) != old and t)
    assert api.me(token).ok()["me"]["email"] == ANN
    assert eventually(lambda: published_kids(api) == [kid_of(token)])


def test_list_shows_each_key_and_its_state(api: Api) -> None:
    old = kid_of(api.user(ANN))
    new = rotate(api)
    lines = cli(api, "list").splitlines()
    assert lines[0].split() == ["kid", "alg", "signs", "from", "(UTC)", "state"]
    states = {line.split()[0]: line.split()[-1] for line in lines[1:]}
    assert states == {old: "signing", new: "next"}
    cli(api, "retire", old)
    states = {
        line.split()[0]: line.split()[-1] for line in cli(api, "list").splitlines()[1:]
    }
    assert states == {old: "retired", new: "signing"}


def test_retiring_an_unknown_or_retired_key_is_an_error(api: Api) -> None:
    old = kid_of(api.user(ANN))
    unknown = run_cli(api_environ(api), "signing-key", "retire", "no-such-kid")
    assert (unknown.returncode, unknown.stdout) == (1, "")
    assert unknown.stderr == "error: no published key with kid no-such-kid\n"
    cli(api, "retire", old)
    again = run_cli(api_environ(api), "signing-key", "retire", old)
    assert again.returncode == 1


def test_a_start_with_another_algorithm_publishes_its_key_ahead(api: Api) -> None:
    es256 = kid_of(api.user(ANN))
    environ = api_environ(api) | {"USER_SERVICE_JWT_ALGORITHM": "EdDSA"}
    done = run_cli(environ, "migrate")  # what a restart with the new setting does
    assert done.returncode == 0, done.stderr
    lines = run_cli(environ, "signing-key", "list").stdout.splitlines()[1:]
    assert [(line.split()[1], line.split()[-1]) for line in lines] == [
        ("ES256", "signing"),
        ("EdDSA", "next"),
    ]
    assert lines[0].split()[0] == es256
