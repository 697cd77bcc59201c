"""Generated arguments for every query and mutation of the schema: whatever a
client sends, no answer is a 5xx or INTERNAL_SERVER_ERROR (review issue 12,
item 9).

The operations are read from the schema itself, so a new one is fuzzed without
a change here. Bodies go out as raw JSON bytes: json.dumps writes a lone
surrogate as its escape (valid JSON, which the service decodes back into the
lone surrogate), where httpx would refuse to encode it.
"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import graphql
import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as run_settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from app import create_app
from errors import declared_errors
from models.db import close_database
from provisioning import new_tenant
from schema import build_schema
from settings import Settings
from tests.conftest import PASSWORD, make_environ

ADMIN, USER = "boss@acme.io", "ann@acme.io"
# Loose limits, so that generated requests reach the resolvers' own checks
# rather than stop at RATE_LIMITED.
LOOSE_LIMITS = {
    f"USER_SERVICE_{name}": "100000 per minute"
    for name in (
        "LOGIN_FAILURES_PER_ACCOUNT",
        "LOGIN_FAILURES_PER_ADDRESS",
        "SIGNUPS_PER_ADDRESS",
        "CODE_FAILURES_PER_ACCOUNT",
        "MAIL_REQUESTS_PER_ADDRESS",
    )
}
EXAMPLES_PER_CASE = 25
# Answers no operation declares: a dependency down, values that do not fit the
# schema, a body over the limit.
ANY_OPERATION = {"SERVICE_UNAVAILABLE", "GRAPHQL_VALIDATION_FAILED", "BAD_REQUEST"}
SCHEMA = build_schema(Settings(env="development"))
# Values that broke or nearly broke the service once, and some that reach
# deeper than random text: existing accounts, digits of other scripts.
CRAFTED_TEXT = [
    "",
    " ",
    "\x00",
    "\ud800",
    "a\udfffb",
    "\u0661\u0662\u0663\u0664\u0665\u0666",  # Arabic-Indic 123456
    "\uff11\uff12\uff13\uff14\uff15\uff16",  # fullwidth 123456
    "123456",
    "\uff41\uff44\uff4d\uff49\uff4e@acme.io",  # fullwidth admin
    "\u03a3\u0391\u03a3@acme.io",
    "\ufdfa" * 20 + "@acme.io",
    ADMIN,
    USER,
    "ANN@ACME.IO",
    "+4712345678",
    "YXVkaXQ6OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5",  # "audit:" and a huge number
    "dXNlcjoA",  # "user:" and NUL
    "ABCD-EFGH-JKLM-NPQR",
    "null",
    "-1",
    "1e999",
]
CRAFTED_INTS = [0, -1, 1, 100, 101, 2**31 - 1, 2**31, -(2**31) - 1, 2**63, 10**40]
ANY_CHARACTER = st.one_of(st.characters(), st.characters(categories=["Cs"]))
ODD_TEXT = st.one_of(
    st.sampled_from(CRAFTED_TEXT),
    st.sampled_from(CRAFTED_TEXT),  # twice: twice as often
    st.text(ANY_CHARACTER, max_size=30),
    # Six digits of any script: what str.isdigit() and int() take for a code.
    st.text(st.characters(categories=["Nd"]), min_size=6, max_size=6),
    st.emails(),
    # Huge: up to 50,000 characters, still under the body limit in ASCII.
    st.builds(
        str.__mul__,
        st.sampled_from(["a", "9", "@", "\ud800", "\u0661", "\ufdfa"]),
        st.integers(min_value=255, max_value=50_000),
    ),
)
ODD_INTS = st.one_of(st.sampled_from(CRAFTED_INTS), st.integers())
# What a well-behaved client sends: the other arguments get these, so that the
# resolver gets as far as the argument under test.
# (Never the ADMIN's password: a generated changePassword would change it.)
PLAIN_TEXT = st.sampled_from([ADMIN, USER, "n3w-Secret!", "123456", "Oslo"])
PLAIN_INTS = st.integers(min_value=1, max_value=100)


def schema_operations() -> list[tuple[str, str, graphql.GraphQLField]]:
    """(kind, name, field) of every query and mutation, as development serves them."""
    sdl = str(SCHEMA)
    schema = graphql.build_schema(sdl)
    roots = [("query", schema.query_type), ("mutation", schema.mutation_type)]
    return [
        (kind, name, field)
        for kind, root in roots
        if root is not None
        for name, field in root.fields.items()
    ]


def cases() -> list[Any]:
    """One case per argument of each operation (one for an operation without)."""
    focuses: list[str | None]
    found = []
    for kind, name, field in schema_operations():
        focuses = [*field.args] or [None]
        found += [
            pytest.param(kind, name, field, focus, id=f"{name}({focus or ''})")
            for focus in focuses
        ]
    return found


def document(
    kind: str, name: str, field: graphql.GraphQLField, given: list[str]
) -> str:
    """One operation calling `name` with the `given` arguments as variables."""
    variables = ", ".join(f"${arg}: {field.args[arg].type}" for arg in given)
    passed = ", ".join(f"{arg}: ${arg}" for arg in given)
    call = f"{name}({passed})" if passed else name
    leaf = graphql.is_leaf_type(graphql.get_named_type(field.type))
    selection = "" if leaf else " { __typename }"
    return f"{kind}{f'({variables})' if variables else ''} {{ {call}{selection} }}"


def values(kind: graphql.GraphQLInputType, *, odd: bool) -> st.SearchStrategy[Any]:
    """Values for an input type (odd ones, or plain), null where it may be."""
    if isinstance(kind, graphql.GraphQLNonNull):
        return non_null_values(kind.of_type, odd=odd)
    return st.none() | non_null_values(kind, odd=odd)


def non_null_values(
    kind: graphql.GraphQLInputType, *, odd: bool
) -> st.SearchStrategy[Any]:
    if isinstance(kind, graphql.GraphQLList):
        return st.lists(values(kind.of_type, odd=odd), max_size=3)
    if isinstance(kind, graphql.GraphQLInputObjectType):
        # Inside an odd object, each field is odd or plain by chance.
        fields = {
            name: values(field.type, odd=False) | values(field.type, odd=odd)
            for name, field in kind.fields.items()
        }
        required = {
            name: fields[name]
            for name, field in kind.fields.items()
            if graphql.is_required_input_field(field)
        }
        optional = {name: fields[name] for name in fields.keys() - required.keys()}
        return st.fixed_dictionaries(required, optional=optional)
    name = kind.name if isinstance(kind, graphql.GraphQLNamedType) else ""
    if isinstance(kind, graphql.GraphQLEnumType):
        plain = st.sampled_from(list(kind.values))
        return plain | st.sampled_from(["", "admin", "\ud800"]) if odd else plain
    if name == "Int":
        return ODD_INTS if odd else PLAIN_INTS
    if name == "Boolean":
        return st.sampled_from([0, "true", []]) if odd else st.booleans()
    return ODD_TEXT if odd else PLAIN_TEXT  # String, ID, any custom scalar


def plain_value(given: graphql.GraphQLInputType) -> Any:
    """One well-formed value of an input type (only required fields)."""
    kind = graphql.get_nullable_type(given)
    if isinstance(kind, graphql.GraphQLList):
        return [plain_value(kind.of_type)]
    if isinstance(kind, graphql.GraphQLInputObjectType):
        return {
            name: plain_value(field.type)
            for name, field in kind.fields.items()
            if graphql.is_required_input_field(field)
        }
    if isinstance(kind, graphql.GraphQLEnumType):
        return next(iter(kind.values))
    name = kind.name if isinstance(kind, graphql.GraphQLNamedType) else ""
    return {"Int": 20, "Boolean": True}.get(name, USER)


def crafted_values(kind: graphql.GraphQLType) -> list[Any]:
    name = graphql.get_named_type(kind).name
    if name == "Int":
        return CRAFTED_INTS
    if isinstance(graphql.get_named_type(kind), graphql.GraphQLScalarType):
        return [] if name == "Boolean" else CRAFTED_TEXT
    return []


def crafted_arguments(
    field: graphql.GraphQLField, focus: str | None
) -> list[dict[str, Any]]:
    """Every crafted value in the argument in focus (or in each field of it, for
    an input object), with plain values for the required others."""
    if focus is None:
        return [{}]
    plain = {
        name: plain_value(argument.type)
        for name, argument in field.args.items()
        if graphql.is_required_argument(argument) and name != focus
    }
    kind = graphql.get_nullable_type(field.args[focus].type)
    if isinstance(kind, graphql.GraphQLInputObjectType):
        return [
            {**plain, focus: {**plain_value(kind), name: value}}
            for name, input_field in kind.fields.items()
            for value in crafted_values(input_field.type)
        ]
    return [{**plain, focus: value} for value in crafted_values(kind)]


def arguments(
    field: graphql.GraphQLField, focus: str | None
) -> st.SearchStrategy[dict[str, Any]]:
    """Odd values for the argument in focus, plain ones for the others; an
    optional argument may be left out (its default then applies)."""
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for name, argument in field.args.items():
        chosen = required if graphql.is_required_argument(argument) else optional
        chosen[name] = values(argument.type, odd=name == focus)
    if focus is not None and focus in optional:
        required[focus] = optional.pop(focus)
    return st.fixed_dictionaries(required, optional=optional)


@pytest.fixture
def acme(tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    """The app with loose limits, and the API key of a tenant with a USER and
    an ADMIN who has begun to enroll TOTP (so confirmTotp checks codes)."""
    settings = Settings.from_env(make_environ(tmp_path, **LOOSE_LIMITS))
    with TestClient(create_app(settings)) as client:
        key = new_tenant(settings, "acme", ADMIN, PASSWORD)
        post(client, key, SIGN_UP, {"input": {"email": USER, "password": PASSWORD}})
        post(
            client,
            key,
            "mutation { enrollTotp { secret } }",
            {},
            admin_token(client, key),
        )
        yield client, key
    close_database()


SIGN_UP = "mutation($input: SignUpInput!) { signUp(input: $input) { id } }"
LOGIN = (
    "mutation($email: String!, $password: String!) {"
    " login(email: $email, password: $password) { accessToken } }"
)


def post(
    client: TestClient,
    api_key: str,
    query: str,
    variables: dict[str, Any],
    token: str | None = None,
) -> dict[str, Any]:
    """POST an operation as raw JSON; fail on a 5xx or INTERNAL_SERVER_ERROR."""
    headers = {"X-API-Key": api_key, "Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    body = json.dumps({"query": query, "variables": variables}).encode()
    response = client.post("/graphql", content=body, headers=headers)
    assert response.status_code < 500, (response.status_code, response.text)
    answer: dict[str, Any] = response.json()
    codes = [
        (error.get("extensions") or {}).get("code")
        for error in answer.get("errors") or []
    ]
    assert "INTERNAL_SERVER_ERROR" not in codes, answer
    return answer


def answered_codes(answer: dict[str, Any]) -> set[str]:
    return {error["extensions"]["code"] for error in answer.get("errors") or []}


def declared_codes(kind: str, name: str) -> set[str]:
    """The codes the operation's resolver declares (schema/error_codes.described)."""
    root = "Query" if kind == "query" else "Mutation"
    field = SCHEMA.get_field_for_type(name, root)
    assert field is not None
    assert field.base_resolver is not None
    resolver: Any = field.base_resolver.wrapped_func
    declared = declared_errors(resolver) or ()
    return {error.code for error, _ in declared}


def admin_token(client: TestClient, api_key: str) -> str:
    """A fresh login each time: a generated logoutAll may end the last one."""
    answer = post(client, api_key, LOGIN, {"email": ADMIN, "password": PASSWORD})
    return str(answer["data"]["login"]["accessToken"])


@pytest.mark.parametrize(("kind", "name", "field", "focus"), cases())
def test_generated_arguments_never_answer_an_internal_error(
    acme: tuple[TestClient, str],
    kind: str,
    name: str,
    field: graphql.GraphQLField,
    focus: str | None,
) -> None:
    client, api_key = acme
    declared = declared_codes(kind, name)

    # @given on an inner function: the app is built once per case, not once
    # per example (and Hypothesis' function-scoped-fixture check holds).
    @run_settings(
        max_examples=EXAMPLES_PER_CASE,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(variables=arguments(field, focus), as_admin=st.booleans())
    def send(variables: dict[str, Any], as_admin: bool) -> None:
        token = admin_token(client, api_key) if as_admin else None
        query = document(kind, name, field, list(variables))
        answer = post(client, api_key, query, variables, token)
        assert answered_codes(answer) <= declared | ANY_OPERATION, answer

    # The values that once broke the service are always sent, first; as an
    # ADMIN, who gets furthest.
    for variables in crafted_arguments(field, focus):
        send = example(variables=variables, as_admin=True)(send)
    send()
