"""The signing keys every worker and host shares: public JWKs, sealed private halves."""

import json
from datetime import UTC, datetime, timedelta

from peewee import CharField, DateTimeField, TextField

from models.db import BaseModel, utcnow


class SigningKey(BaseModel):
    kid = CharField(max_length=64, primary_key=True)  # the JWK's thumbprint
    algorithm = CharField(max_length=8)
    public_jwk = TextField()  # JSON
    sealed_private_key = TextField()  # PEM, sealed with the data key
    created_at = DateTimeField(default=utcnow)
    signs_from = DateTimeField()
    retired_at = DateTimeField(null=True, index=True)

    @classmethod
    def add(
        cls,
        *,
        algorithm: str,
        public_jwk: dict[str, str],
        sealed_private_key: str,
        publish_ahead: int,
    ) -> "SigningKey":
        return cls.create(
            kid=public_jwk["kid"],
            algorithm=algorithm,
            public_jwk=json.dumps(public_jwk),
            sealed_private_key=sealed_private_key,
            signs_from=utcnow() + timedelta(seconds=publish_ahead),
        )

    @classmethod
    def all_keys(cls) -> list["SigningKey"]:
        return list(cls.select().order_by(cls.signs_from, cls.kid))

    @classmethod
    def unretired(cls) -> list["SigningKey"]:
        return list(cls.select().where(cls.retired_at.is_null()))

    @classmethod
    def retire(cls, kid: str) -> bool:
        """Retire a key now; False if no unretired key has this kid."""
        query = cls.update(retired_at=utcnow()).where(
            (cls.kid == kid) & cls.retired_at.is_null()
        )
        return bool(query.execute())

    @property
    def jwk(self) -> dict[str, str]:
        jwk: dict[str, str] = json.loads(self.public_jwk)
        return jwk


def aware(moment: datetime | None) -> datetime | None:
    """A stored (naive UTC) time as an aware one."""
    return moment.replace(tzinfo=UTC) if moment else None
