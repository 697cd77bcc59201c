"""Asymmetric signing keys, shared by every worker and host through the database.

Access tokens signed before this migration (HS256 with the JWT secret) stop
working: clients get UNAUTHENTICATED and use their refresh token, which still
works, to get a new pair. The first key is made at the next start.
"""

from peewee import CharField, DateTimeField, Model, TextField


def up(migrator, db):
    class SigningKey(Model):
        kid = CharField(max_length=64, primary_key=True)
        algorithm = CharField(max_length=8)
        public_jwk = TextField()
        sealed_private_key = TextField()
        created_at = DateTimeField()
        signs_from = DateTimeField()
        retired_at = DateTimeField(null=True, index=True)

        class Meta:
            database = db
            table_name = "signing_key"

    db.create_tables([SigningKey])


def down(migrator, db):
    db.execute_sql("DROP TABLE signing_key")
