"""Each distinct GraphQL document parsed, checked and named once, in one extension.

A client sends the same few documents again and again. The first time, the text
is parsed (bounded in tokens) and validated with graphql-core's rules plus the
document limits; the document, its errors and its operations' root fields are
then kept. Every later request with the same text skips straight to execution.

One extension rather than one per concern: Strawberry enters every extension's
hooks on every request, which cost more than the checks themselves.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
)
from graphql.validation import KnownDirectivesRule, NoSchemaIntrospectionCustomRule
from strawberry.extensions import SchemaExtension

from schema.document_limits import KnownDirectivesOnce

MULTIPLE = "multiple"  # an operation with several root fields
DOCUMENTS_KEPT = 256


@dataclass
class Known:
    document: DocumentNode
    errors: list[GraphQLError] | None = None  # None until validated
    root_fields: dict[str | None, str | None] = field(default_factory=dict)


class Documents:
    """The documents seen lately, by text; the oldest goes first when full."""

    def __init__(
        self,
        *,
        rules: list[type[ASTValidationRule]],
        max_tokens: int,
        introspection: bool,
    ) -> None:
        self.rules = (
            rules if introspection else [*rules, NoSchemaIntrospectionCustomRule]
        )
        self.max_tokens = max_tokens
        self.known: dict[str, Known] = {}
        self._all_rules: tuple[type[ASTValidationRule], ...] | None = None

    def extension(self) -> "DocumentCache":
        return DocumentCache(self)

    def keep(self, query: str, document: DocumentNode) -> Known:
        if len(self.known) >= DOCUMENTS_KEPT:
            del self.known[next(iter(self.known))]
        known = self.known[query] = Known(document)
        return known

    def all_rules(
        self, defaults: tuple[type[ASTValidationRule], ...]
    ) -> tuple[type[ASTValidationRule], ...]:
        """graphql-core's rules (an unknown directive reported once) and ours."""
        if self._all_rules is None:
            self._all_rules = (
                *(
                    KnownDirectivesOnce if r is KnownDirectivesRule else r
                    for r in defaults
                ),
                *self.rules,
            )
        return self._all_rules


class DocumentCache(SchemaExtension):
    def __init__(self, documents: Documents) -> None:
        self.documents = documents
        self.known: Known | None = None

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        query = context.query or ""
        self.known = self.documents.known.get(query)
        if self.known is not None:
            context.graphql_document = self.known.document
            yield
            return
        context.parse_options["max_tokens"] = self.documents.max_tokens
        yield
        if context.graphql_document is not None:
            self.known = self.documents.keep(query, context.graphql_document)

    def on_validate(self) -> Iterator[None]:
        context, known = self.execution_context, self.known
        if known is not None and known.errors is not None:
            # An empty list tells Strawberry the document is already validated.
            context.pre_execution_errors = list(known.errors)
            yield
            return
        context.validation_rules = self.documents.all_rules(context.validation_rules)
        yield
        if known is not None:
            known.errors = list(context.pre_execution_errors or [])

    def on_operation(self) -> Iterator[None]:
        yield
        context, known = self.execution_context, self.known
        if known is None or not hasattr(context.context, "root_fields"):
            return
        name = context.operation_name
        if name not in known.root_fields:
            known.root_fields[name] = root_fields(known.document, name)
        context.context.root_fields = known.root_fields[name]


def root_fields(document: DocumentNode, wanted: str | None) -> str | None:
    """The operation's root field, or MULTIPLE: names from the schema, unlike
    the client's operationName, so logs and metrics see a bounded set."""
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        if wanted and (definition.name is None or definition.name.value != wanted):
            continue
        names = {
            selection.name.value
            for selection in definition.selection_set.selections
            if isinstance(selection, FieldNode)
        }
        return names.pop() if len(names) == 1 else MULTIPLE
    return None
