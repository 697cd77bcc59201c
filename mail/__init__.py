"""Outgoing mail: composed from templates, sent in the background over SMTP.

Sending never blocks a request: `Mailer.send` queues the message and a task of
the app's lifespan delivers it (smtplib in a thread), retrying with a growing
pause. A mail that cannot be delivered is logged and counted, never shown to the
caller. Without USER_SERVICE_SMTP_URL, development writes each mail to the log.
"""

import asyncio
import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from string import Template
from urllib.parse import parse_qs, unquote, urlparse

from metrics import MAIL_FAILURES

log = logging.getLogger("user_service.mail")
TEMPLATES = Path(__file__).with_name("templates")
RETRY_PAUSES = (1.0, 5.0, 25.0)
SMTP_TIMEOUT = 10


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str
    html: str


def compose(template: str, *, to: str, **values: str) -> Mail:
    """Fill `<template>.txt`, `.html` and its subject (the .txt's first line)."""
    text = Template((TEMPLATES / f"{template}.txt").read_text()).substitute(values)
    subject, _, body = text.partition("\n\n")
    html_values = {name: _escape(value) for name, value in values.items()}
    html = Template((TEMPLATES / f"{template}.html").read_text()).substitute(
        html_values
    )
    return Mail(to=to, subject=subject.removeprefix("Subject: "), text=body, html=html)


def _escape(value: str) -> str:
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
    )


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    username: str | None
    password: str | None
    starttls: bool
    implicit_tls: bool

    @classmethod
    def from_url(cls, url: str) -> "SmtpServer":
        """smtp://user:pass@host:587?starttls=true, or smtps://… for implicit TLS."""
        parsed = urlparse(url)
        if parsed.scheme not in ("smtp", "smtps") or not parsed.hostname:
            raise ValueError(
                "use smtp://[user:pass@]host[:port][?starttls=true] or smtps://"
            )
        query = parse_qs(parsed.query)
        implicit = parsed.scheme == "smtps"
        return cls(
            host=parsed.hostname,
            port=parsed.port or (465 if implicit else 25),
            username=unquote(parsed.username) if parsed.username else None,
            password=unquote(parsed.password) if parsed.password else None,
            starttls=query.get("starttls", ["false"])[0].lower() == "true",
            implicit_tls=implicit,
        )

    def deliver(self, message: EmailMessage) -> None:
        context = ssl.create_default_context()
        smtp = (
            smtplib.SMTP_SSL(
                self.host, self.port, timeout=SMTP_TIMEOUT, context=context
            )
            if self.implicit_tls
            else smtplib.SMTP(self.host, self.port, timeout=SMTP_TIMEOUT)
        )
        with smtp:
            if self.starttls:
                smtp.starttls(context=context)
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)


class Mailer:
    def __init__(self, *, smtp_url: str | None, sender: str, log_instead: bool) -> None:
        self.server = SmtpServer.from_url(smtp_url) if smtp_url else None
        self.sender = sender
        self.log_instead = log_instead
        self.queue: asyncio.Queue[Mail] = asyncio.Queue()

    def send(self, mail: Mail) -> None:
        """Queue a mail; it goes out in the background."""
        self.queue.put_nowait(mail)

    async def deliver_forever(self) -> None:
        while True:
            mail = await self.queue.get()
            try:
                await self.deliver(mail)
            finally:
                self.queue.task_done()

    async def deliver(self, mail: Mail) -> None:
        if self.server is None:
            if self.log_instead:
                # Development only: the mail, link included, is the point here.
                log.info("mail to %s: %s\n%s", mail.to, mail.subject, mail.text)
            else:
                log.warning("no USER_SERVICE_SMTP_URL: a mail was not sent")
            return
        message = self.message(mail)
        for attempt, pause in enumerate((*RETRY_PAUSES, None), start=1):
            try:
                await asyncio.to_thread(self.server.deliver, message)
                return
            except (OSError, smtplib.SMTPException) as error:
                log.warning(
                    "mail delivery attempt %d failed: %s", attempt, type(error).__name__
                )
                if pause is None:
                    MAIL_FAILURES.inc()
                    log.error(
                        "a mail could not be delivered after %d attempts", attempt
                    )
                    return
                await asyncio.sleep(pause)

    def message(self, mail: Mail) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message.set_content(mail.text)
        message.add_alternative(mail.html, subtype="html")
        return message

    async def drain(self, timeout: float) -> None:
        """Give queued mails a moment to go out before the process stops."""
        try:
            await asyncio.wait_for(self.queue.join(), timeout)
        except TimeoutError:
            log.warning("%d mail(s) still queued at shutdown", self.queue.qsize())
