"""Password hashing: bcrypt over a pre-hash, so every character counts."""

import asyncio
from collections.abc import Iterator

import pytest

from auth.hashing import PasswordHasher
from auth.passwords import dummy_hash, hash_password, password_matches

COST = 4
PASSWORD = "s3cret-Pw!"


@pytest.fixture
def hasher() -> Iterator[PasswordHasher]:
    hasher = PasswordHasher(cost=COST, threads=1)
    yield hasher
    hasher.close()


def test_hash_is_a_standard_bcrypt_string_at_the_given_cost() -> None:
    password_hash = hash_password(PASSWORD, cost=COST)
    assert password_hash.startswith("$2b$04$")
    assert len(password_hash) == 60
    assert PASSWORD not in password_hash


def test_hashes_of_one_password_differ_by_salt() -> None:
    assert hash_password(PASSWORD, cost=COST) != hash_password(PASSWORD, cost=COST)


def test_password_matches_its_own_hash() -> None:
    assert password_matches(PASSWORD, hash_password(PASSWORD, cost=COST))


@pytest.mark.parametrize(
    "attempt",
    ["s3cret-Pw", "s3cret-Pw!!", "S3CRET-PW!", "", " s3cret-Pw!"],
    ids=["one less", "one more", "other case", "empty", "leading space"],
)
def test_other_password_does_not_match(attempt: str) -> None:
    assert not password_matches(attempt, hash_password(PASSWORD, cost=COST))


@pytest.mark.parametrize(
    ("stored", "attempt"),
    [
        pytest.param("a" * 72 + "X", "a" * 72 + "Y", id="differ after 72 bytes"),
        pytest.param("a" * 72 + "X", "a" * 72, id="first 72 bytes only"),
        pytest.param("a" * 127 + "1", "a" * 127 + "2", id="differ in last of 128"),
        pytest.param("é" * 40 + "1", "é" * 40 + "2", id="differ after 80 bytes"),
        pytest.param("Abc1!\x00xyz", "Abc1!\x00zzz", id="differ after a NUL"),
        pytest.param("Abc1!\x00xyz", "Abc1!", id="cut at the NUL"),
    ],
)
def test_every_character_counts(stored: str, attempt: str) -> None:
    stored_hash = hash_password(stored, cost=COST)
    assert password_matches(stored, stored_hash)
    assert not password_matches(attempt, stored_hash)


def test_password_of_512_utf8_bytes_hashes_and_matches() -> None:
    password = "\U0001f600" * 128
    assert password_matches(password, hash_password(password, cost=COST))


@pytest.mark.parametrize(
    "attempt", ["", PASSWORD, "\x00", "a" * 200], ids=["empty", "any", "NUL", "long"]
)
def test_dummy_hash_matches_no_password(attempt: str) -> None:
    assert not password_matches(attempt, dummy_hash(cost=COST))


def test_dummy_hash_has_the_cost_of_real_hashes() -> None:
    assert dummy_hash(cost=COST).startswith("$2b$04$")
    assert dummy_hash(cost=COST) != dummy_hash(cost=COST)


def test_hasher_hashes_at_its_cost_and_matches(hasher: PasswordHasher) -> None:
    async def hash_and_check() -> tuple[str, bool, bool]:
        stored = await hasher.hash(PASSWORD)
        right = await hasher.matches(PASSWORD, stored)
        wrong = await hasher.matches("other-Pw1!", stored)
        return stored, right, wrong

    stored, right, wrong = asyncio.run(hash_and_check())
    assert stored.startswith("$2b$04$")
    assert (right, wrong) == (True, False)


def test_hasher_without_a_stored_hash_never_matches(hasher: PasswordHasher) -> None:
    assert asyncio.run(hasher.matches(PASSWORD, None)) is False
