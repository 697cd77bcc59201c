"""Give every GraphQL error the contract's `extensions.code`, and hide internals;
and write each operation's list of errors from what its resolver declares.

Service errors carry their own code. Parse and validation errors (they have no
original error and no path) keep their message, minus "Did you mean" hints when
suggestions are off. Anything else is unexpected: it is logged here with its
traceback and the client sees only INTERNAL_SERVER_ERROR.
"""

import logging
import re
from collections.abc import Callable

from graphql import GraphQLError, GraphQLSyntaxError, VariableDefinitionNode, print_ast
from peewee import DatabaseError

from errors import (
    InternalServerError,
    ServiceError,
    ServiceUnavailable,
    declared_errors,
)
from metrics import DATABASE_ERRORS
from models.db import is_unavailable

log = logging.getLogger("user_service.errors")
SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")
PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"


def described(resolver: Callable[..., object], text: str) -> str:
    """An operation's description: `text`, then the errors its resolver declares."""
    declared = declared_errors(resolver)
    if declared is None:
        raise TypeError(f"{resolver.__name__} declares no errors: use @raises")
    if not declared:
        return text
    codes = [
        f"{error.code} ({when})" if when else error.code for error, when in declared
    ]
    return f"{text} Errors: {', '.join(codes)}."


def with_code(error: GraphQLError, *, suggestions: bool) -> GraphQLError:
    original = error.original_error
    if isinstance(original, ServiceError) or _has_code(original):
        return error
    # Variable coercion errors wrap graphql-core's own GraphQLError.
    if error.path is None and (original is None or isinstance(original, GraphQLError)):
        syntax = isinstance(error, GraphQLSyntaxError)
        code = PARSE_FAILED if syntax else VALIDATION_FAILED
        message = error.message if suggestions else SUGGESTION.sub("", error.message)
        return _copy(error, _without_values(error, message), {"code": code})
    if isinstance(original, DatabaseError):
        DATABASE_ERRORS.inc()
        if is_unavailable(original):
            log.warning("database unavailable: %s", type(original).__name__)
            unavailable = ServiceUnavailable()
            return _copy(error, unavailable.message, unavailable.extensions)
    log.error("unexpected error at %s", error.path, exc_info=original or error)
    internal = InternalServerError()
    return _copy(error, internal.message, internal.extensions)


def _without_values(error: GraphQLError, message: str) -> str:
    """graphql-core quotes a badly typed variable's value, which may be a
    password: name the variable and its type instead."""
    node = error.nodes[0] if error.nodes else None
    if not isinstance(node, VariableDefinitionNode):
        return message
    name, expected = node.variable.name.value, print_ast(node.type)
    return f"Variable '${name}' does not fit its type {expected}."


def _has_code(error: Exception | None) -> bool:
    return isinstance(error, GraphQLError) and "code" in (error.extensions or {})


def _copy(
    error: GraphQLError, message: str, extensions: dict[str, object]
) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )
