"""This process's view of the shared signing keys: which one signs, which verify.

The keys live in the database (models/signing_key.py), so every worker and host
signs with the same one. Each process reads them again when its copy is a few
seconds old and it signs, or when a token names a key it has not seen yet; a
retired key stops verifying at once, because the request's one query checks it.
"""

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from auth.sealing import seal, unseal
from auth.signing_keys import (
    KeySchedule,
    StoredKey,
    generate_key,
    load_private_key,
    load_public_key,
)
from auth.tokens import CLOCK_SKEW, SigningKey, VerificationKey
from models.signing_key import SigningKey as SigningKeyRow
from models.signing_key import aware
from settings import PREFIX, Settings, SettingsError

# Signing reads the keys again when this process's copy is older: a rotation
# reaches every worker well within its publish-ahead.
REFRESH_AFTER = 2.0
# A token naming an unknown key makes this process read the keys at most this
# often: random kids cannot turn every request into a query.
UNKNOWN_KEY_RELOAD = 1.0


@dataclass(frozen=True)
class _Snapshot:
    schedule: KeySchedule
    verification: Mapping[str, VerificationKey]
    loaded_at: float = field(default_factory=time.monotonic)


class KeyRing:
    def __init__(self, settings: Settings) -> None:
        self.data_key = str(settings.data_key)
        self.algorithm = settings.jwt_algorithm
        self.publish_ahead = settings.signing_key_publish_ahead
        self.token_ttl = timedelta(seconds=settings.access_token_ttl) + CLOCK_SKEW
        self._snapshot = _Snapshot(KeySchedule((), self.token_ttl), {}, -1e9)
        self._private: dict[str, SigningKey] = {}
        self._lock = threading.Lock()

    @property
    def schedule(self) -> KeySchedule:
        return self._snapshot.schedule

    @property
    def verification_keys(self) -> Mapping[str, VerificationKey]:
        return self._snapshot.verification

    def load(self) -> None:
        """Read the keys from the database (database work: only inside `run`)."""
        stored = [stored_key(row) for row in SigningKeyRow.unretired()]
        schedule = KeySchedule.of(stored, token_ttl=self.token_ttl)
        now = datetime.now(UTC)
        verification = {
            key.kid: VerificationKey(
                key.kid, key.algorithm, load_public_key(key.public_jwk)
            )
            for key in schedule.published(now)
        }
        self._snapshot = _Snapshot(schedule, verification)

    def may_reload(self) -> bool:
        """Whether an unknown kid may make this process read the keys now."""
        return time.monotonic() - self._snapshot.loaded_at >= UNKNOWN_KEY_RELOAD

    def ensure(self) -> None:
        """Make the first key, or one of the configured algorithm (published
        ahead), and check that the data key opens the signing key."""
        with self._lock:
            self.load()
            schedule = self._snapshot.schedule
            if not schedule.keys:
                self.add(publish_ahead=0)
            elif all(key.algorithm != self.algorithm for key in schedule.keys):
                self.add(publish_ahead=self.publish_ahead)
            self.load()
        self.signing_key(datetime.now(UTC))

    def add(self, *, publish_ahead: int) -> StoredKey:
        """A new key of the configured algorithm: published now, signing later."""
        pem, jwk = generate_key(self.algorithm)
        row = SigningKeyRow.add(
            algorithm=self.algorithm,
            public_jwk=jwk,
            sealed_private_key=seal(pem, key=self.data_key),
            publish_ahead=publish_ahead,
        )
        return stored_key(row)

    def signing_key(self, now: datetime) -> SigningKey:
        """The key to sign with now (database work when the copy is stale)."""
        if self.is_stale():
            self.load()
        stored = self._snapshot.schedule.signing_key(now)
        if stored is None:  # every key was retired: start afresh
            self.ensure()
            stored = self._snapshot.schedule.signing_key(now)
            assert stored is not None  # noqa: S101  # ensure() just made one
        key = self._private.get(stored.kid)
        if key is None:
            key = self._private[stored.kid] = self._open(stored)
        return key

    def jwks(self, now: datetime) -> dict[str, Any]:
        return self._snapshot.schedule.jwks(now)

    def is_stale(self) -> bool:
        return time.monotonic() - self._snapshot.loaded_at > REFRESH_AFTER

    def _open(self, key: StoredKey) -> SigningKey:
        try:
            pem = unseal(key.sealed_private_key, keys=[self.data_key])
        except ValueError:
            raise SettingsError(
                f"{PREFIX}DATA_KEY does not open the signing key {key.kid}: restore "
                "the data key it was sealed with, or run `python server.py "
                f"signing-key rotate` and then `signing-key retire {key.kid}`."
            ) from None
        return SigningKey(key.kid, key.algorithm, load_private_key(pem))


def stored_key(row: SigningKeyRow) -> StoredKey:
    return StoredKey(
        kid=row.kid,
        algorithm=row.algorithm,
        public_jwk=row.jwk,
        sealed_private_key=row.sealed_private_key,
        signs_from=aware(row.signs_from),  # type: ignore[arg-type]  # never null
        retired_at=aware(row.retired_at),
    )
