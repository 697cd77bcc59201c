"""signUp commits the account, its SIGNED_UP audit row and its verification link
in one transaction, and mails the link only after the commit (issue 12, item 16).

The database itself is made to fail part of a sign-up: a trigger refuses the
verification link's row (inside the transaction), or a deferred foreign key
makes the COMMIT itself fail (after every statement succeeded). Either way the
sign-up leaves nothing behind and sends no mail. Both backends: SQLite, and
PostgreSQL with USER_SERVICE_TEST_DATABASE=postgresql.
tests/test_sign_up_atomicity.py kills a real server during sign-ups.
"""

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from models import AuditEvent, User
from tests.conftest import Api, Result, make_environ
from tests.mail_server import Inbox

ANN = "ann@x.io"
VERIFY_URL = "https://app.example/verify?token={token}"

# A row of email_token is refused inside the transaction...
REFUSE_LINKS = {
    "sqlite": [
        "CREATE TRIGGER refuse_links BEFORE INSERT ON email_token"
        " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_link() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
        "CREATE TRIGGER refuse_links BEFORE INSERT ON email_token"
        " FOR EACH ROW EXECUTE FUNCTION refuse_link()",
    ],
}
# ...or accepted, with a row that breaks a deferred foreign key: COMMIT fails.
TRIP_THE_COMMIT = {
    "sqlite": [
        "CREATE TABLE tripwire_parent (id INTEGER PRIMARY KEY)",
        "CREATE TABLE tripwire (parent INTEGER REFERENCES tripwire_parent (id)"
        " DEFERRABLE INITIALLY DEFERRED)",
        "CREATE TRIGGER trip AFTER INSERT ON email_token"
        " BEGIN INSERT INTO tripwire VALUES (1); END",
    ],
    "postgresql": [
        "CREATE TABLE tripwire_parent (id INTEGER PRIMARY KEY)",
        "CREATE TABLE tripwire (parent INTEGER REFERENCES tripwire_parent (id)"
        " DEFERRABLE INITIALLY DEFERRED)",
        "CREATE FUNCTION trip() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN INSERT INTO tripwire VALUES (1); RETURN NEW; END $$",
        "CREATE TRIGGER trip AFTER INSERT ON email_token"
        " FOR EACH ROW EXECUTE FUNCTION trip()",
    ],
}
REMOVE = {
    "sqlite": [
        "DROP TRIGGER IF EXISTS refuse_links",
        "DROP TRIGGER IF EXISTS trip",
    ],
    "postgresql": [
        "DROP TRIGGER IF EXISTS refuse_links ON email_token",
        "DROP TRIGGER IF EXISTS trip ON email_token",
    ],
}


@pytest.fixture
def environ(tmp_path: Path, inbox: Inbox) -> dict[str, str]:
    """Overrides conftest's: verification mails go to `inbox`."""
    return make_environ(
        tmp_path, USER_SERVICE_SMTP_URL=inbox.url, USER_SERVICE_VERIFY_URL=VERIFY_URL
    )


def backend(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def execute(url: str, statements: list[str]) -> None:
    """Run DDL on the app's database from a connection of the test's own."""
    if backend(url) == "sqlite":
        with contextlib.closing(sqlite3.connect(url.split(":///", 1)[1])) as db:
            for statement in statements:
                db.execute(statement)
            db.commit()
        return
    with psycopg.connect(url, autocommit=True, connect_timeout=3) as db:
        for statement in statements:
            db.execute(statement)


@contextlib.contextmanager
def database_refusing(api: Api, statements: dict[str, list[str]]) -> Iterator[None]:
    url = api.settings.database_url
    execute(url, statements[backend(url)])
    try:
        yield
    finally:
        execute(url, REMOVE[backend(url)])


def assert_left_nothing(api: Api, result: Result, inbox: Inbox) -> None:
    assert result.data is None
    assert result.error_code == "INTERNAL_SERVER_ERROR", result.body
    assert User.select().where(User.email == ANN).count() == 0
    assert AuditEvent.select().where(AuditEvent.action == "SIGNED_UP").count() == 0
    assert api.login(ANN).error_code == "UNAUTHENTICATED"
    inbox.stays(ANN, 0)


def test_sign_up_whose_verification_link_is_refused_leaves_no_account_or_audit_row(
    api: Api, inbox: Inbox
) -> None:
    with database_refusing(api, REFUSE_LINKS):
        result = api.sign_up(ANN)

    assert_left_nothing(api, result, inbox)
    api.sign_up(ANN).ok()  # the address is free: nothing was half written
    inbox.wait_for(ANN, 1, containing=VERIFY_URL.partition("{token}")[0])


def test_sign_up_whose_commit_fails_sends_no_mail_and_leaves_nothing(
    api: Api, inbox: Inbox
) -> None:
    with database_refusing(api, TRIP_THE_COMMIT):
        result = api.sign_up(ANN)

    assert_left_nothing(api, result, inbox)
    api.sign_up(ANN).ok()
    inbox.wait_for(ANN, 1)
    inbox.stays(ANN, 1)
