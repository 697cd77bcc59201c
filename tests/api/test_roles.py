"""Roles, permissions and groups through HTTP: the contract's section, rule by rule."""

from typing import Any

import jwt
import pytest
from playhouse.test_utils import count_queries

from tests.conftest import PASSWORD, Api

BOSS = "boss@acme.io"
SERVICE_PERMISSIONS = [
    *("users:read", "users:write", "users:deactivate", "roles:manage"),
    *("sessions:revoke", "mfa:reset", "audit:read", "identity-providers:manage"),
]
ACCESS = "{ me { roles permissions groups } }"
DEFINE_ROLE = (
    "mutation($name: String!, $permissions: [String!]!, $description: String) {"
    " defineRole(name: $name, permissions: $permissions, description: $description)"
    " { name description permissions builtIn } }"
)
GRANT = (
    "mutation($e: String!, $r: String!) {"
    " grantRole(email: $e, role: $r) { email roles } }"
)
REVOKE = (
    "mutation($e: String!, $r: String!) {"
    " revokeRole(email: $e, role: $r) { email roles } }"
)
DEFINE_GROUP = (
    "mutation($n: String!, $r: [String!]!) { defineGroup(name: $n, roles: $r)"
    " { name roles members { totalCount edges { node { email } } } } }"
)
ADD = "mutation($e: String!, $g: String!) { addToGroup(email: $e, group: $g) { name } }"
REMOVE = (
    "mutation($e: String!, $g: String!) {"
    " removeFromGroup(email: $e, group: $g) { name } }"
)


class Tenant:
    """acme, whose first ADMIN is boss@acme.io, and its members' tokens."""

    def __init__(self, api: Api) -> None:
        self.api = api.tenant("acme", admin=(BOSS, PASSWORD))
        self.tokens = {BOSS: self.api.token(BOSS)}

    def member(self, email: str) -> str:
        self.tokens[email] = self.api.user(email)
        return self.tokens[email]

    def as_(self, email: str, query: str, **variables: Any) -> Any:
        return self.api.gql(query, variables, token=self.tokens[email])

    def define_role(self, name: str, *permissions: str, by: str = BOSS) -> Any:
        return self.as_(by, DEFINE_ROLE, name=name, permissions=list(permissions))

    def grant(self, email: str, role: str, by: str = BOSS) -> Any:
        return self.as_(by, GRANT, e=email, r=role)

    def access(self, email: str) -> dict[str, list[str]]:
        return dict(self.as_(email, ACCESS).ok()["me"])


@pytest.fixture
def acme(api: Api) -> Tenant:
    return Tenant(api)


def test_built_in_roles_and_the_service_permissions_are_listed(acme: Tenant) -> None:
    roles = acme.as_(BOSS, "{ roles { name permissions builtIn } }").ok()["roles"]
    assert roles == [
        {"name": "ADMIN", "permissions": SERVICE_PERMISSIONS, "builtIn": True},
        {"name": "USER", "permissions": [], "builtIn": True},
    ]
    assert acme.as_(BOSS, "{ permissions }").ok()["permissions"] == SERVICE_PERMISSIONS
    assert acme.access(BOSS) == {
        "roles": ["ADMIN"],
        "permissions": SERVICE_PERMISSIONS,
        "groups": [],
    }


def test_a_support_role_may_read_users_and_reset_mfa_but_not_deactivate(
    acme: Tenant,
) -> None:
    role = acme.define_role("support", "users:read", "mfa:reset").ok()["defineRole"]
    assert role == {
        "name": "support",
        "description": None,
        "permissions": ["mfa:reset", "users:read"],
        "builtIn": False,
    }
    acme.member("sue@acme.io")
    acme.member("ann@acme.io")
    assert acme.grant("sue@acme.io", "support").ok()["grantRole"]["roles"] == [
        "USER",
        "support",
    ]
    assert acme.access("sue@acme.io")["permissions"] == ["users:read", "mfa:reset"]
    users = acme.as_("sue@acme.io", "{ users { totalCount } }").ok()["users"]
    assert users == {"totalCount": 3}
    reset = "mutation($e: String!) { resetMfa(email: $e) }"
    assert acme.as_("sue@acme.io", reset, e="ann@acme.io").ok() == {"resetMfa": True}
    deactivate = (
        "mutation($e: String!) { setUserActive(email: $e, active: false) { email } }"
    )
    refused = acme.as_("sue@acme.io", deactivate, e="ann@acme.io")
    assert refused.error_code == "FORBIDDEN"
    assert acme.as_(
        "sue@acme.io", "{ auditLog { pageInfo { hasNextPage } } }"
    ).error_code == ("FORBIDDEN")


def test_a_revoked_grant_stops_the_next_request_of_the_same_token(
    acme: Tenant,
) -> None:
    acme.define_role("support", "users:read").ok()
    acme.member("sue@acme.io")
    acme.grant("sue@acme.io", "support").ok()
    assert acme.as_("sue@acme.io", "{ users { totalCount } }").ok()
    assert acme.as_(BOSS, REVOKE, e="sue@acme.io", r="support").ok()["revokeRole"] == {
        "email": "sue@acme.io",
        "roles": ["USER"],
    }
    assert acme.as_("sue@acme.io", "{ users { totalCount } }").error_code == "FORBIDDEN"


def test_tokens_carry_the_roles_and_permissions_of_their_moment(acme: Tenant) -> None:
    acme.define_role("billing", "invoices:approve", "users:read").ok()
    acme.member("sue@acme.io")
    acme.grant("sue@acme.io", "billing").ok()
    claims = jwt.decode(
        acme.api.token("sue@acme.io"), options={"verify_signature": False}
    )
    assert claims["roles"] == ["USER", "billing"]
    assert claims["permissions"] == ["users:read", "invoices:approve"]


def test_groups_give_their_roles_to_their_members(acme: Tenant) -> None:
    acme.define_role("support", "users:read").ok()
    acme.member("bob@acme.io")
    group = acme.as_(BOSS, DEFINE_GROUP, n="ops", r=["support"]).ok()["defineGroup"]
    assert group == {
        "name": "ops",
        "roles": ["support"],
        "members": {"totalCount": 0, "edges": []},
    }
    acme.as_(BOSS, ADD, e="bob@acme.io", g="ops").ok()
    assert acme.access("bob@acme.io") == {
        "roles": ["USER", "support"],
        "permissions": ["users:read"],
        "groups": ["ops"],
    }
    listed = acme.as_("bob@acme.io", "{ groups { name roles members { totalCount } } }")
    assert listed.ok()["groups"] == [
        {"name": "ops", "roles": ["support"], "members": {"totalCount": 1}}
    ]
    acme.as_(BOSS, REMOVE, e="bob@acme.io", g="ops").ok()
    assert acme.access("bob@acme.io") == {
        "roles": ["USER"],
        "permissions": [],
        "groups": [],
    }


def test_deleting_a_role_takes_it_from_grants_and_groups(acme: Tenant) -> None:
    acme.define_role("support", "users:read").ok()
    acme.member("bob@acme.io")
    acme.grant("bob@acme.io", "support").ok()
    acme.as_(BOSS, DEFINE_GROUP, n="ops", r=["support"]).ok()
    delete = "mutation($n: String!) { deleteRole(name: $n) }"
    assert acme.as_(BOSS, delete, n="support").ok() == {"deleteRole": True}
    assert acme.access("bob@acme.io")["roles"] == ["USER"]
    groups = acme.as_(BOSS, "{ groups { name roles } }").ok()["groups"]
    assert groups == [{"name": "ops", "roles": []}]


# ---- no one grants what they do not hold ------------------------------------------


@pytest.fixture
def delegate(acme: Tenant) -> Tenant:
    """dee@acme.io holds roles:manage and users:read, nothing else."""
    acme.define_role("delegate", "roles:manage", "users:read").ok()
    acme.define_role("powerful", "users:deactivate").ok()
    acme.member("dee@acme.io")
    acme.member("bob@acme.io")
    acme.grant("dee@acme.io", "delegate").ok()
    return acme


def test_a_role_with_a_service_permission_one_lacks_cannot_be_defined(
    delegate: Tenant,
) -> None:
    refused = delegate.define_role("mine", "users:deactivate", by="dee@acme.io")
    assert refused.error_code == "FORBIDDEN"
    roles = delegate.as_(BOSS, "{ roles { name } }").ok()["roles"]
    assert "mine" not in [role["name"] for role in roles]


def test_the_tenants_own_permissions_may_be_given_by_any_manager(
    delegate: Tenant,
) -> None:
    role = delegate.define_role("billing", "invoices:approve", by="dee@acme.io")
    assert role.ok()["defineRole"]["permissions"] == ["invoices:approve"]
    delegate.grant("bob@acme.io", "billing", by="dee@acme.io").ok()


def test_a_role_one_lacks_cannot_be_granted_nor_given_through_a_group(
    delegate: Tenant,
) -> None:
    dee = "dee@acme.io"
    assert delegate.grant("bob@acme.io", "powerful", by=dee).error_code == "FORBIDDEN"
    group = delegate.as_(dee, DEFINE_GROUP, n="power", r=["powerful"])
    assert group.error_code == "FORBIDDEN"
    delegate.as_(BOSS, DEFINE_GROUP, n="power", r=["powerful"]).ok()
    added = delegate.as_(dee, ADD, e="bob@acme.io", g="power")
    assert added.error_code == "FORBIDDEN"
    assert delegate.access("bob@acme.io")["permissions"] == []


def test_only_a_holder_of_every_permission_makes_an_admin(delegate: Tenant) -> None:
    token = delegate.tokens["dee@acme.io"]
    promoted = delegate.api.update_profile(token, email="bob@acme.io", role="ADMIN")
    assert promoted.error_code == "FORBIDDEN"
    created = delegate.api.sign_up("new@acme.io", role="ADMIN", token=token)
    assert created.error_code == "FORBIDDEN"
    assert delegate.access("bob@acme.io")["roles"] == ["USER"]


def test_without_roles_manage_nothing_changes(acme: Tenant) -> None:
    acme.member("ann@acme.io")
    assert acme.define_role("x", "a:b", by="ann@acme.io").error_code == "FORBIDDEN"
    assert acme.as_("ann@acme.io", "{ roles { name } }").error_code == "FORBIDDEN"
    no_token = acme.api.gql("{ roles { name } }")
    assert no_token.error_code == "UNAUTHENTICATED"


# ---- the tenant keeps a holder of roles:manage ----------------------------------


def test_the_last_holder_of_roles_manage_keeps_it(acme: Tenant) -> None:
    acme.define_role("manager", "roles:manage", "users:read").ok()
    acme.member("ann@acme.io")
    acme.grant("ann@acme.io", "manager").ok()
    # ann holds roles:manage now, so the ADMIN may step down...
    acme.api.update_profile(acme.tokens[BOSS], email=BOSS, role="USER").ok()
    # ...and ann, the last holder, cannot lose it in any way.
    ann = "ann@acme.io"
    assert acme.as_(ann, REVOKE, e=ann, r="manager").error_code == "FORBIDDEN"
    delete = 'mutation { deleteRole(name: "manager") }'
    assert acme.as_(ann, delete).error_code == "FORBIDDEN"
    narrowed = acme.define_role("manager", "users:read", by=ann)
    assert narrowed.error_code == "FORBIDDEN"
    assert acme.access(ann)["permissions"] == ["users:read", "roles:manage"]


def test_a_group_holding_the_last_roles_manage_keeps_its_member(acme: Tenant) -> None:
    acme.define_role("manager", "roles:manage").ok()
    acme.member("ann@acme.io")
    acme.as_(BOSS, DEFINE_GROUP, n="admins", r=["manager"]).ok()
    acme.as_(BOSS, ADD, e="ann@acme.io", g="admins").ok()
    acme.api.update_profile(acme.tokens[BOSS], email=BOSS, role="USER").ok()
    ann = "ann@acme.io"
    assert acme.as_(ann, REMOVE, e=ann, g="admins").error_code == "FORBIDDEN"
    delete = 'mutation { deleteGroup(name: "admins") }'
    assert acme.as_(ann, delete).error_code == "FORBIDDEN"
    emptied = acme.as_(ann, DEFINE_GROUP, n="admins", r=[])
    assert emptied.error_code == "FORBIDDEN"
    assert acme.access(ann)["groups"] == ["admins"]


def test_the_sole_admin_cannot_step_down_without_another_manager(
    acme: Tenant,
) -> None:
    demoted = acme.api.update_profile(acme.tokens[BOSS], email=BOSS, role="USER")
    assert demoted.error_code == "FORBIDDEN"


# ---- names, unknowns and other tenants -----------------------------------------

BAD_NAMES = {
    "space": ("bad name", "name"),
    "empty": ("", "name"),
    "built-in ADMIN": ("ADMIN", "name"),
    "built-in USER": ("USER", "name"),
    "too long": ("r" * 65, "name"),
    "starts with a digit": ("1role", "name"),
}


@pytest.mark.parametrize(("name", "field"), BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_bad_role_names_are_bad_user_input(acme: Tenant, name: str, field: str) -> None:
    result = acme.define_role(name, "a:b")
    assert result.error_code == "BAD_USER_INPUT"
    assert field in result.extensions["fields"]


@pytest.mark.parametrize(
    "permission",
    ["Invoices:Approve", "no-colon", "a:b:c", ":b", "a:", "a b:c", "é:x", "x" * 101],
)
def test_bad_permission_names_are_bad_user_input(acme: Tenant, permission: str) -> None:
    result = acme.define_role("role", permission)
    assert result.error_code == "BAD_USER_INPUT"
    assert "permissions" in result.extensions["fields"]


def test_unknown_roles_groups_and_emails_are_not_found(acme: Tenant) -> None:
    acme.define_role("support", "users:read").ok()
    acme.member("ann@acme.io")
    assert acme.grant("ann@acme.io", "nope").error_code == "NOT_FOUND"
    assert acme.grant("nobody@acme.io", "support").error_code == "NOT_FOUND"
    assert acme.as_(BOSS, ADD, e="ann@acme.io", g="nope").error_code == "NOT_FOUND"
    group = acme.as_(BOSS, DEFINE_GROUP, n="ops", r=["nope"])
    assert group.error_code == "NOT_FOUND"
    assert acme.as_(BOSS, 'mutation { deleteRole(name: "nope") }').error_code == (
        "NOT_FOUND"
    )


def test_another_tenants_roles_and_accounts_are_not_found(
    acme: Tenant, api: Api
) -> None:
    other = api.tenant("globex", admin=("boss@globex.io", PASSWORD))
    other_token = other.token("boss@globex.io")
    other.gql(
        DEFINE_ROLE,
        {"name": "support", "permissions": ["users:read"]},
        token=other_token,
    ).ok()
    other.user("gina@globex.io")
    acme.member("ann@acme.io")
    assert acme.grant("ann@acme.io", "support").error_code == "NOT_FOUND"
    acme.define_role("support", "users:read").ok()
    assert acme.grant("gina@globex.io", "support").error_code == "NOT_FOUND"
    roles = other.gql("{ roles { name } }", token=other_token).ok()["roles"]
    assert [role["name"] for role in roles] == ["ADMIN", "USER", "support"]


def test_every_change_is_in_the_audit_log(acme: Tenant) -> None:
    acme.define_role("support", "users:read").ok()
    acme.member("ann@acme.io")
    acme.grant("ann@acme.io", "support").ok()
    acme.as_(BOSS, REVOKE, e="ann@acme.io", r="support").ok()
    acme.as_(BOSS, DEFINE_GROUP, n="ops", r=["support"]).ok()
    acme.as_(BOSS, ADD, e="ann@acme.io", g="ops").ok()
    acme.as_(BOSS, REMOVE, e="ann@acme.io", g="ops").ok()
    acme.as_(BOSS, 'mutation { deleteGroup(name: "ops") }').ok()
    acme.as_(BOSS, 'mutation { deleteRole(name: "support") }').ok()
    log = acme.as_(BOSS, "{ auditLog(first: 50) { edges { node { action detail } } } }")
    events = [edge["node"] for edge in log.ok()["auditLog"]["edges"]]
    changes = [
        (event["action"], event["detail"])
        for event in reversed(events)
        if event["action"].startswith(("ROLE_", "GROUP_"))
    ]
    assert changes == [
        ("ROLE_DEFINED", "support"),
        ("ROLE_GRANTED", "support"),
        ("ROLE_REVOKED", "support"),
        ("GROUP_DEFINED", "ops: support"),
        ("GROUP_MEMBER_ADDED", "ops"),
        ("GROUP_MEMBER_REMOVED", "ops"),
        ("GROUP_DELETED", "ops"),
        ("ROLE_DELETED", "support"),
    ]


def test_me_reads_roles_permissions_and_groups_in_one_more_query(
    acme: Tenant,
) -> None:
    acme.define_role("support", "users:read").ok()
    acme.member("ann@acme.io")
    acme.grant("ann@acme.io", "support").ok()
    token = acme.tokens["ann@acme.io"]
    acme.api.me(token).ok()  # warm: the tenant is read once per process
    with count_queries() as plain:
        acme.api.gql("{ me { email } }", token=token).ok()
    with count_queries() as full:
        acme.api.gql("{ me { email roles permissions groups } }", token=token).ok()
    assert (plain.count, full.count) == (1, 2)


def test_group_members_come_in_pages(acme: Tenant) -> None:
    acme.as_(BOSS, DEFINE_GROUP, n="ops", r=[]).ok()
    for email in ("ann@acme.io", "bob@acme.io"):
        acme.member(email)
        acme.as_(BOSS, ADD, e=email, g="ops").ok()
    page = (
        "query($first: Int, $after: String) { groups { members(first: $first,"
        " after: $after) { totalCount edges { node { email } }"
        " pageInfo { hasNextPage endCursor } } } }"
    )
    first = acme.as_(BOSS, page, first=1, after=None).ok()["groups"][0]["members"]
    assert [edge["node"]["email"] for edge in first["edges"]] == ["ann@acme.io"]
    assert (first["totalCount"], first["pageInfo"]["hasNextPage"]) == (2, True)
    after = first["pageInfo"]["endCursor"]
    rest = acme.as_(BOSS, page, first=None, after=after).ok()["groups"][0]["members"]
    assert [edge["node"]["email"] for edge in rest["edges"]] == ["bob@acme.io"]
    assert rest["pageInfo"]["hasNextPage"] is False
    bad = acme.as_(BOSS, page, first=0, after=None)
    assert bad.error_code == "BAD_USER_INPUT"
