"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives.

`running_inbox()` starts it on a free port and always stops it; `Inbox` lets a
test wait, with a bounded wait, for the mails the service sends in the
background.
"""

import asyncio
import contextlib
import email
import email.policy
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

HOST = "127.0.0.1"
WAIT_SECONDS = 5.0
QUIET_SECONDS = 1.0
POLL_SECONDS = 0.02


def free_port() -> int:
    """A loopback port nothing listens on (for a while)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Received:
    """One mail as the server got it: the envelope and the parsed message."""

    mail_from: str | None
    rcpt_tos: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        return _body(self.message, "plain")

    @property
    def html(self) -> str:
        return _body(self.message, "html")


def _body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body((subtype,))
    assert part is not None, f"no text/{subtype} part"
    return str(part.get_content())


@dataclass
class Inbox:
    """The handler of the SMTP server, and what it received so far."""

    url: str = ""
    delay: float = 0.0  # seconds to wait before accepting each mail
    _mails: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        content = envelope.content
        raw = content.encode() if isinstance(content, str) else content or b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        with self._lock:
            self._mails.append(
                Received(envelope.mail_from, tuple(envelope.rcpt_tos), message)
            )
        return "250 Message accepted for delivery"

    def mails(self, to: str | None = None, containing: str = "") -> list[Received]:
        """What arrived so far, oldest first: for `to`, `containing` in the text."""
        with self._lock:
            mails = list(self._mails)
        return [
            mail
            for mail in mails
            if (to is None or to in mail.rcpt_tos) and containing in mail.text
        ]

    def wait_for(
        self,
        to: str,
        count: int = 1,
        *,
        containing: str = "",
        timeout: float = WAIT_SECONDS,
    ) -> list[Received]:
        """Every such mail for `to` once `count` arrived; fails after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            mails = self.mails(to, containing)
            if len(mails) >= count:
                return mails
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(mails)} mail(s) for {to} within {timeout} s, not {count}"
                )
            time.sleep(POLL_SECONDS)

    def stays(self, to: str, count: int, seconds: float = QUIET_SECONDS) -> None:
        """Assert that `to` has exactly `count` mails, still after `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert len(self.mails(to)) <= count, self.mails(to)
            time.sleep(POLL_SECONDS)
        assert len(self.mails(to)) == count, self.mails(to)


@contextlib.contextmanager
def running_inbox(delay: float = 0.0) -> Iterator[Inbox]:
    """An SMTP server on a free loopback port, stopped (and its port freed) after."""
    port = free_port()
    inbox = Inbox(url=f"smtp://{HOST}:{port}", delay=delay)
    controller = Controller(inbox, hostname=HOST, port=port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()
