"""Other services verify our tokens with the public keys alone: PyJWT's
PyJWKClient and Node's jose (createRemoteJWKSet), against a real server process,
for every signing algorithm, and across a rotation with two workers."""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from auth.signing_keys import generate_key, load_private_key
from tests.conftest import make_environ
from tests.node import node_packages, run_node
from tests.servers import Server, Servers, free_port, run_cli

pytestmark = pytest.mark.slow

JOSE = "jose@6.2.18"
ANN = "ann@x.io"


@pytest.fixture
def servers() -> Iterator[Servers]:
    started = Servers()
    yield started
    started.stop_all()


def serve(servers: Servers, tmp_path: Path, *, workers: int = 1, **env: str) -> Server:
    """A server whose issuer is its own address, as in production."""
    port = free_port()
    environ = make_environ(
        tmp_path, USER_SERVICE_ISSUER=f"http://127.0.0.1:{port}", **env
    )
    return servers.start(environ, workers=workers, port=port)


def jwks_uri(server: Server) -> str:
    return f"{server.http.base_url}/.well-known/jwks.json"


def verified_by_pyjwt(server: Server, token: str) -> dict[str, Any]:
    discovery = server.http.get("/.well-known/openid-configuration").json()
    key = jwt.PyJWKClient(discovery["jwks_uri"]).get_signing_key_from_jwt(token)
    claims = jwt.decode_complete(token, options={"verify_signature": False})
    verified: dict[str, Any] = jwt.decode(
        token,
        key,
        algorithms=[key.algorithm_name],
        audience=claims["payload"]["aud"],
        issuer=discovery["issuer"],
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )
    return verified


def verified_by_jose(server: Server, token: str) -> "tuple[int, str]":
    claims = jwt.decode(token, options={"verify_signature": False})
    done = run_node(
        node_packages(JOSE),
        "verify_with_jose.mjs",
        jwks_uri(server),
        claims["iss"],
        claims["aud"],
        token,
    )
    return done.returncode, done.stdout.strip() or done.stderr


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA", "RS256"])
def test_pyjwt_and_jose_verify_tokens_of_each_algorithm(
    servers: Servers, tmp_path: Path, algorithm: str
) -> None:
    server = serve(servers, tmp_path, USER_SERVICE_JWT_ALGORITHM=algorithm)
    token = server.dev.user(ANN)
    claims = verified_by_pyjwt(server, token)
    assert claims["roles"] == ["USER"]
    status, output = verified_by_jose(server, token)
    assert status == 0, output
    assert output == f'{{"sub":"{claims["sub"]}","alg":"{algorithm}","roles":["USER"]}}'


def test_jose_refuses_a_token_signed_by_a_foreign_key_under_a_real_kid(
    servers: Servers, tmp_path: Path
) -> None:
    # The verifier under test must be able to say no, or its yes means nothing.
    server = serve(servers, tmp_path)
    token = server.dev.user(ANN)
    pem, _ = generate_key("ES256")
    header = jwt.get_unverified_header(token)
    forged = jwt.encode(
        jwt.decode(token, options={"verify_signature": False}),
        load_private_key(pem),  # type: ignore[arg-type]
        algorithm="ES256",
        headers={"typ": header["typ"], "kid": header["kid"]},
    )
    status, output = verified_by_jose(server, forged)
    assert (status, output.split(":")[0]) == (
        1,
        "ERR_JWS_SIGNATURE_VERIFICATION_FAILED",
    )
    with pytest.raises(jwt.InvalidSignatureError):
        verified_by_pyjwt(server, forged)


def test_two_workers_sign_with_the_rotated_key_and_verify_each_others_tokens(
    servers: Servers, tmp_path: Path
) -> None:
    server = serve(
        servers, tmp_path, workers=2, USER_SERVICE_SIGNING_KEY_PUBLISH_AHEAD="0"
    )
    api = server.dev
    old_token = api.user(ANN)
    rotated = run_cli(server.environ, "signing-key", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    new_kid = rotated.stdout.split()[1]
    deadline = time.monotonic() + 10
    tokens: list[str] = []
    # Many logins over fresh connections land on both workers.
    while len(tokens) < 6:
        assert time.monotonic() < deadline, "a worker kept the old key"
        token = api.token(ANN)
        if jwt.get_unverified_header(token)["kid"] == new_kid:
            tokens.append(token)
        else:
            tokens.clear()
        time.sleep(0.1)
    for token in [old_token, *tokens]:
        assert verified_by_pyjwt(server, token)["sub"]
        for _ in range(4):
            assert api.me(token).ok()["me"]["email"] == ANN
