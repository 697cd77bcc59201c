"""An email-change token carries the address it confirms."""

from peewee import CharField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column(
            "email_token", "new_email", CharField(max_length=254, null=True)
        )
    )


def down(migrator, db):
    migrator.migrate(migrator.drop_column("email_token", "new_email"))
