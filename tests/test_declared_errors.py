"""Every error code an operation can answer is declared on its resolver, and
nothing more: the schema's descriptions are written from those declarations
(issue 18, item 7).

What an operation can raise is read from the source: its resolver, its field's
permission checks and, transitively, every function of the service they call.
A call is followed when its target is known from the code alone: a module-level
name, or an attribute of a value whose type the annotations give (`context:
Context`, `context.limits`, a function's return type). Errors any operation may
answer (SERVICE_UNAVAILABLE, INTERNAL_SERVER_ERROR) are left out.
"""

import ast
import inspect
import textwrap
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import strawberry
from strawberry.permission import PermissionExtension

from errors import (
    InternalServerError,
    ServiceError,
    ServiceUnavailable,
    declared_errors,
)
from schema import Mutation, Query

UNIVERSAL = {ServiceUnavailable.code, InternalServerError.code}
SERVICE_PACKAGES = {
    "auth",
    "errors",
    "models",
    "provisioning",
    "resolvers",
    "schema",
    "validation",
}


@dataclass(frozen=True)
class Instance:
    """A value known only by its type."""

    cls: type
    args: tuple[Any, ...] = ()


def instance_of(hint: object) -> Instance | None:
    """The instance an annotation promises: `X | None` is an X."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        kinds = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return instance_of(kinds[0]) if len(kinds) == 1 else None
    origin = typing.get_origin(hint)
    if isinstance(origin, type):
        return Instance(origin, typing.get_args(hint))
    return Instance(hint) if isinstance(hint, type) else None


def hints_of(target: object) -> dict[str, Any]:
    try:
        return typing.get_type_hints(target)
    except Exception:  # forward references to names the module never imports
        return {}


def attribute_of(instance: Instance, name: str) -> object:
    if issubclass(instance.cls, strawberry.Info) and name == "context":
        return instance_of(instance.args[0])
    found = inspect.getattr_static(instance.cls, name, None)
    if isinstance(found, property):
        return instance_of(hints_of(found.fget).get("return"))
    if isinstance(found, classmethod | staticmethod):
        return found.__func__
    if inspect.isfunction(found):
        return found
    return instance_of(hints_of(instance.cls).get(name))


def is_service_code(target: object) -> bool:
    module = getattr(target, "__module__", None) or ""
    return module.split(".")[0] in SERVICE_PACKAGES


Errors = set[type[ServiceError]]


class Raisable:
    """The errors functions of the service can raise, following their calls."""

    def __init__(self) -> None:
        self.done: dict[Callable[..., object], Errors] = {}

    def of(self, function: Callable[..., object]) -> Errors:
        function = inspect.unwrap(function)
        if function in self.done or not is_service_code(function):
            return self.done.get(function, set())
        self.done[function] = set()  # recursion ends here
        self.done[function] = Reader(self, function).errors()
        return self.done[function]

    def codes(self, function: Callable[..., object]) -> set[str]:
        return {error.code for error in self.of(function)}


class Reader:
    """One function's source, read in order with what its names hold; an error
    raised in a `try` whose handler catches it does not get out."""

    def __init__(self, raisable: Raisable, function: Callable[..., Any]) -> None:
        self.raisable = raisable
        self.function = function
        self.names: dict[str, object] = {}
        for name, hint in hints_of(function).items():
            self.names[name] = instance_of(hint)
        owner = function.__globals__.get(function.__qualname__.split(".")[0])
        if isinstance(owner, type):
            self.names["self"] = Instance(owner)
            self.names["cls"] = owner

    def errors(self) -> Errors:
        source = textwrap.dedent(inspect.getsource(self.function))
        return self.visit(ast.parse(source), caught=())

    def visit(self, node: ast.AST, *, caught: tuple[type, ...]) -> Errors:
        if isinstance(node, ast.Try):
            handled = tuple(self.handled(handler) for handler in node.handlers)
            found = set().union(
                *(self.visit(child, caught=caught + handled) for child in node.body)
            )
            rest = [*node.handlers, *node.orelse, *node.finalbody]
            return found.union(*(self.visit(child, caught=caught) for child in rest))
        self.remember(node)
        here = self.raised(node)
        found = {error for error in here if not issubclass(error, caught)}
        for child in ast.iter_child_nodes(node):
            found |= self.visit(child, caught=caught)
        return found

    def handled(self, handler: ast.ExceptHandler) -> type:
        caught = self.value(handler.type) if handler.type is not None else None
        if isinstance(caught, type):
            return caught
        return BaseException  # a tuple or a name we cannot tell: assume the worst

    def remember(self, node: ast.AST) -> None:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], self.value(node.value)
        elif isinstance(node, ast.AnnAssign):
            target, value = node.target, instance_of(self.value(node.annotation))
        else:
            return
        if isinstance(target, ast.Name):
            self.names[target.id] = value

    def raised(self, node: ast.AST) -> Errors:
        """What this node raises itself, or through the functions it calls."""
        if isinstance(node, ast.Raise) and node.exc is not None:
            return self.raised_error(node.exc)
        if not isinstance(node, ast.Call):
            return set()
        found: Errors = set()
        arguments = [*node.args, *(keyword.value for keyword in node.keywords)]
        for target in (node.func, *arguments):  # run(find_account, ...) calls it
            value = self.value(target)
            if inspect.isfunction(value):
                found |= self.raisable.of(value)
        return found

    def raised_error(self, expression: ast.expr) -> Errors:
        if isinstance(expression, ast.BoolOp):  # raise error or Unauthenticated()
            return set().union(*(self.raised_error(v) for v in expression.values))
        if isinstance(expression, ast.Call):
            expression = expression.func
        value = self.value(expression)
        error = value.cls if isinstance(value, Instance) else value
        if isinstance(error, type) and issubclass(error, ServiceError):
            return {error}
        return set()

    def value(self, node: ast.expr) -> object:
        if isinstance(node, ast.Await):
            return self.value(node.value)
        if isinstance(node, ast.Name):
            if node.id in self.names:
                return self.names[node.id]
            return self.function.__globals__.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.value(node.value)
            if isinstance(base, Instance):
                return attribute_of(base, node.attr)
            return getattr(base, node.attr, None) if base is not None else None
        if isinstance(node, ast.Call):
            called = self.value(node.func)
            if isinstance(called, type):
                return Instance(called)
            if inspect.isfunction(called):
                return instance_of(hints_of(called).get("return"))
        return None


def operations() -> dict[str, strawberry.types.field.StrawberryField]:
    fields = [
        *Query.__strawberry_definition__.fields,  # type: ignore[attr-defined]
        *Mutation.__strawberry_definition__.fields,  # type: ignore[attr-defined]
    ]
    return {field.graphql_name or field.python_name: field for field in fields}


def field_codes(field: strawberry.types.field.StrawberryField) -> set[str]:
    """What the field's permission checks raise, or answer when they deny."""
    raisable = Raisable()
    codes: set[str] = set()
    for extension in field.extensions:
        if not isinstance(extension, PermissionExtension):
            continue
        for permission in extension.permissions:
            codes |= raisable.codes(type(permission).has_permission)
            codes.add(permission.error_extensions["code"])  # type: ignore[index]
    return codes


def resolver_of(field: strawberry.types.field.StrawberryField) -> Any:
    assert field.base_resolver is not None
    return field.base_resolver.wrapped_func


OPERATIONS = operations()


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_operation_declares_exactly_the_errors_it_can_raise(name: str) -> None:
    field = OPERATIONS[name]
    resolver = resolver_of(field)
    declared = declared_errors(resolver)
    assert declared is not None, f"{resolver.__name__} has no @raises"
    raisable = (Raisable().codes(resolver) | field_codes(field)) - UNIVERSAL
    assert {error.code for error, _ in declared} == raisable


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_description_lists_the_declared_errors(name: str) -> None:
    field = OPERATIONS[name]
    declared = declared_errors(resolver_of(field)) or ()
    description = field.description or ""
    for error, when in declared:
        assert (f"{error.code} ({when})" if when else error.code) in description
    assert ("Errors:" in description) == bool(declared)


def test_reading_the_source_finds_errors_raised_several_calls_down() -> None:
    """The reader itself: login's codes come from the resolver (MFA_REQUIRED),
    the rate limits through context.limits (RATE_LIMITED) and validation
    (BAD_USER_INPUT)."""
    login = resolver_of(OPERATIONS["login"])
    assert {"MFA_REQUIRED", "RATE_LIMITED", "BAD_USER_INPUT"} <= Raisable().codes(login)
