"""Accounts can be deactivated: they keep their data but cannot log in."""

from peewee import BooleanField


def up(migrator, db):
    migrator.migrate(migrator.add_column("user", "active", BooleanField(default=True)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column("user", "active"))
