"""Email keys are folded (NFKC, then str.casefold), no longer lower-cased:
`ΣΑΣ`, `σας` and `σασ` are one account from now on, and so are `ａｄｍｉｎ` and
`admin`.

Accounts that were two under lower() but fold to one key (a collision) are never
merged or dropped. In each tenant, the oldest account of a collision (by
created_at, then id) takes the folded key. Each later one keeps its old key with
the "@" made a space (models.user.legacy_key): every folded key holds an "@", so
no sign-up can take it, and look-ups try it before the folded key. So both still
log in as before: a spelling whose lower() is a later account's old key reaches
that account, and every other spelling reaches the oldest one. Each collision is
logged at WARNING, naming the tenant and the addresses, for the operator to
change or remove the later accounts. An address whose folded key would not fit
the column (254 characters) keeps its old key the same way and is logged too.

The folding rule is copied here, not imported: this migration must keep doing
what it did when validation/ changes.
"""

import logging
import unicodedata

from peewee import Table

log = logging.getLogger("user_service.migrations")
MAX_KEY_LENGTH = 254
USER_COLUMNS = ("id", "tenant_id", "email", "email_key", "created_at")


def folded(email):
    key = unicodedata.normalize("NFKC", email).casefold()
    return unicodedata.normalize("NFKC", key)


def legacy(old_key):
    return old_key.replace("@", " ")


def up(migrator, db):
    users = Table("user", USER_COLUMNS).bind(db)
    groups = _groups_of_changing_keys(users)
    changes = []  # (user id, old key, new key)
    for (_, key), rows in groups.items():
        rows.sort(key=lambda row: (row.created_at, row.id))
        oldest, *later = rows
        if len(key) > MAX_KEY_LENGTH:
            oldest, later = None, rows
            _report_too_long(rows)
        elif later:
            _report_collision(oldest, later)
        changes += [(row.id, row.email_key, legacy(row.email_key)) for row in later]
        if oldest is not None and oldest.email_key != key:
            changes.append((oldest.id, oldest.email_key, key))
    # Two passes, so no update meets a key another row is about to give up:
    # distinguishing keys are all distinct (old keys were) and hold no "@".
    for user_id, old_key, _ in changes:
        _set_key(users, user_id, legacy(old_key))
    for user_id, old_key, new_key in changes:
        if new_key != legacy(old_key):
            _set_key(users, user_id, new_key)


def down(migrator, db):
    users = Table("user", USER_COLUMNS).bind(db)
    changes = [
        (row.id, row.email.lower())
        for row in _rows(users).iterator()
        if row.email_key != row.email.lower()
    ]
    # Two passes again: lower() keys are distinct, as folded ones were.
    for user_id, key in changes:
        _set_key(users, user_id, legacy(key))
    for user_id, key in changes:
        _set_key(users, user_id, key)


def _rows(users):
    tenants = Table("tenant", ("id", "name"))
    return (
        users.select(
            *(getattr(users, column) for column in USER_COLUMNS),
            tenants.name.alias("tenant_name"),
        )
        .join(tenants, on=users.tenant_id == tenants.id)
        .namedtuples()
    )


def _groups_of_changing_keys(users):
    """The accounts whose key changes, with every account their folded key
    already names, grouped by (tenant id, folded key).

    A collision needs a key that changes (old keys were unique), so the table
    is read once, row by row, and only those groups are kept in memory.
    """
    groups = {}
    for row in _rows(users).iterator():
        key = folded(row.email)
        if key != row.email_key:
            groups.setdefault((row.tenant_id, key), []).append(row)
    keys = sorted({key for _, key in groups})
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        for row in _rows(users).where(users.email_key.in_(chunk)):
            group = groups.get((row.tenant_id, row.email_key))
            if group is not None and folded(row.email) == row.email_key:
                group.append(row)
    return groups


def _set_key(users, user_id, key):
    users.update(email_key=key).where(users.id == user_id).execute()


def _report_collision(oldest, later):
    log.warning(
        "tenant %r: accounts %s are one address now that emails are compared"
        " case-folded; %r keeps it, and the others log in only with their own"
        " spellings. Change or remove the others.",
        oldest.tenant_name,
        ", ".join(repr(row.email) for row in [oldest, *later]),
        oldest.email,
    )


def _report_too_long(rows):
    log.warning(
        "tenant %r: the folded email key of %s is too long; they log in only"
        " with their own spellings. Change their addresses.",
        rows[0].tenant_name,
        ", ".join(repr(row.email) for row in rows),
    )
