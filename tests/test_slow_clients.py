"""Slow clients cannot hold connections: a request's head and body have deadlines,
and a worker holds a bounded number of connections. Real servers, raw sockets,
no API key; the bounds are set small here and the waits have wide margins."""

import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_environ
from tests.servers import Server, Servers

pytestmark = pytest.mark.slow

HEADER_TIMEOUT = 1
BODY_TIMEOUT = 2
MARGIN = 8.0  # seconds past a bound before a connection still open fails a test
CAP = 5
HALF_HEAD = b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: applic"
POLICY = b'{"query": "{ passwordPolicy { minLength } }"}'
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    started = Servers()
    yield started
    started.stop_all()


@pytest.fixture(scope="module")
def server(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Server:
    """Two workers: the guard travels to each of uvicorn's worker processes."""
    environ = make_environ(
        tmp_path_factory.mktemp("slow-clients"),
        USER_SERVICE_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
        USER_SERVICE_BODY_TIMEOUT=str(BODY_TIMEOUT),
    )
    return servers.start(environ, workers=2)


@pytest.fixture
def capped(servers: Servers, tmp_path: Path) -> Server:
    environ = make_environ(
        tmp_path,
        USER_SERVICE_MAX_CONNECTIONS=str(CAP),
        USER_SERVICE_HEADER_TIMEOUT="60",  # only the cap closes connections here
    )
    return servers.start(environ)


def connect(server: Server, first_bytes: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=MARGIN)
    send_quietly(sock, first_bytes)  # a refused connection may be closed already
    return sock


def read_until_closed(
    socks: list[socket.socket], *, seconds: float, trickle: bytes = b""
) -> tuple[dict[socket.socket, bytes], list[socket.socket]]:
    """What each socket received until the server closed it, and those still open.

    Meanwhile, a byte of `trickle` goes out on every open socket twice a second.
    """
    received = dict.fromkeys(socks, b"")
    still_open = list(socks)
    deadline = time.monotonic() + seconds
    while still_open and time.monotonic() < deadline:
        for sock in list(still_open):
            if trickle and not send_quietly(sock, trickle[:1]):
                still_open.remove(sock)
        readable, _, _ = select.select(still_open, [], [], 0.5)
        for sock in readable:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            received[sock] += chunk
            if not chunk:
                still_open.remove(sock)
    return received, still_open


def send_quietly(sock: socket.socket, data: bytes) -> bool:
    """Send; False when the server has closed the connection."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        return False
    return True


def request(body: bytes, *, api_key: str | None = None) -> bytes:
    """A whole POST /graphql, after which the server closes the connection."""
    key = f"X-API-Key: {api_key}\r\n" if api_key else ""
    head = (
        "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\n{key}Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def close_all(socks: list[socket.socket]) -> None:
    for sock in socks:
        sock.close()


# ---- the head ----------------------------------------------------------------


@pytest.mark.parametrize(
    "first_bytes", [HALF_HEAD, b""], ids=["half-sent headers", "nothing sent"]
)
def test_fifty_connections_without_a_whole_head_are_closed_at_the_deadline(
    server: Server, first_bytes: bytes
) -> None:
    socks = [connect(server, first_bytes) for _ in range(50)]
    try:
        received, still_open = read_until_closed(socks, seconds=HEADER_TIMEOUT + MARGIN)
        assert not still_open, f"{len(still_open)} still open past the deadline"
        assert set(received.values()) == {b""}  # closed, not answered
    finally:
        close_all(socks)


def test_headers_trickled_a_byte_at_a_time_are_cut_off(server: Server) -> None:
    sock = connect(server, b"POST /graphql HTTP/1.1\r\n")
    try:
        _, still_open = read_until_closed(
            [sock], seconds=HEADER_TIMEOUT + MARGIN, trickle=b"X"
        )
        assert not still_open, f"{len(still_open)} still open past the deadline"
    finally:
        sock.close()


def test_a_kept_alive_connection_trickling_its_next_head_is_cut_off(
    server: Server,
) -> None:
    sock = connect(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        _, still_open = read_until_closed(
            [sock], seconds=HEADER_TIMEOUT + MARGIN, trickle=b"X"
        )
        assert not still_open, f"{len(still_open)} still open past the deadline"
    finally:
        sock.close()


# ---- the body ----------------------------------------------------------------


def test_a_body_trickled_past_the_deadline_gets_408(server: Server) -> None:
    head_and_first_byte = request(b"{" + b" " * 99)[:-99]
    sock = connect(server, head_and_first_byte)
    try:
        received, still_open = read_until_closed(
            [sock], seconds=BODY_TIMEOUT + MARGIN, trickle=b" "
        )
        assert not still_open, f"{len(still_open)} still open past the deadline"
        head, _, body = received[sock].partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 ")
        error = json.loads(body)["errors"][0]
        assert error["extensions"]["code"] == "BAD_REQUEST"
    finally:
        sock.close()


def test_a_body_sent_in_parts_within_the_deadline_is_served(server: Server) -> None:
    whole = request(POLICY, api_key=server.dev.api_key)
    sock = connect(server, whole[:-20])
    try:
        for part in (whole[-20:-10], whole[-10:]):
            time.sleep(0.2)
            sock.sendall(part)
        received, _ = read_until_closed([sock], seconds=MARGIN)
        head, _, body = received[sock].partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), head
        assert json.loads(body) == {"data": {"passwordPolicy": {"minLength": 8}}}
    finally:
        sock.close()


def test_a_normal_request_still_works(server: Server) -> None:
    result = server.dev.gql("{ passwordPolicy { minLength } }")
    assert result.ok() == {"passwordPolicy": {"minLength": 8}}


# ---- the connection cap --------------------------------------------------------


def test_connections_past_the_cap_are_closed_at_once(capped: Server) -> None:
    capped.http.close()  # its kept-alive connection would count against the cap
    time.sleep(0.5)
    socks = [connect(capped, HALF_HEAD) for _ in range(CAP + 3)]
    try:
        _, still_open = read_until_closed(socks, seconds=3.0)
        # The ones accepted first are held; the rest were refused.
        assert CAP - 1 <= len(still_open) <= CAP
        assert still_open == socks[: len(still_open)]
    finally:
        close_all(socks)
    assert healthz_answers(capped)


def healthz_answers(server: Server) -> bool:
    """A plain request is served once the held connections are gone."""
    deadline = time.monotonic() + MARGIN
    while time.monotonic() < deadline:
        sock = connect(server, HEALTHZ)
        with sock:
            received, _ = read_until_closed([sock], seconds=1.0)
        if received[sock].startswith(b"HTTP/1.1 200 "):
            return True
        time.sleep(0.2)
    return False
