"""Bounds on what one GraphQL document may ask, checked before any resolver runs.

Strawberry's rules bound depth and aliases, and the parser bounds tokens
(schema.documents applies them all); the rules here add what they lack: one
credential guess per document, a cap on directives, and a depth cap that also
covers introspection (Strawberry's depth limit skips it).
"""

from typing import Any

from graphql import (
    ASTValidationRule,
    DirectiveNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from graphql.validation import KnownDirectivesRule, MaxIntrospectionDepthRule
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter

# Each of these checks a secret (a password, a token, a code): one per document,
# so aliases cannot turn one request into many guesses.
ONE_PER_DOCUMENT = frozenset(
    {
        "login",
        "signUp",
        "refreshSession",
        "verifyMfa",
        "resetPassword",
        "confirmTotp",
        "disableTotp",
        "changePassword",
        "finishPasskeyLogin",
    }
)
# Deep enough for GraphiQL's introspection query (15), not for ofType chains.
MAX_INTROSPECTION_DEPTH = 15


class OneGuessPerDocument(ValidationRule):
    context: ValidationContext

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        self.seen: set[str] = set()
        self.reported = False

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        parent = self.context.get_parent_type()
        if (
            node.name.value not in ONE_PER_DOCUMENT
            or getattr(parent, "name", None) != "Mutation"
        ):
            return
        if self.seen and not self.reported:
            self.reported = True
            names = ", ".join(sorted(ONE_PER_DOCUMENT))
            self.report_error(
                GraphQLError(f"A document may hold one of {names}, once.", node)
            )
        self.seen.add(node.name.value)


class KnownDirectivesOnce(KnownDirectivesRule):
    """graphql-core's rule, reporting each unknown directive once, not per use.

    Later uses are skipped before an error is even built: building one locates
    it in the source, which ten thousand times over is slow.
    """

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        self.reported: set[str] = set()
        self.current = ""

    def enter_directive(self, node: DirectiveNode, *args: Any) -> None:
        if node.name.value not in self.reported:
            self.current = node.name.value
            super().enter_directive(node, *args)

    def report_error(self, error: GraphQLError) -> None:
        self.reported.add(self.current)
        super().report_error(error)


def max_directives_rule(limit: int) -> type[ASTValidationRule]:
    class MaxDirectives(ASTValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.count = 0

        def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
            self.count += 1
            if self.count == limit + 1:
                self.report_error(
                    GraphQLError(
                        f"A document may hold at most {limit} directives.", node
                    )
                )

    return MaxDirectives


def max_total_depth_rule(limit: int) -> type[ASTValidationRule]:
    class MaxTotalDepth(ASTValidationRule):
        def enter_operation_definition(
            self, node: OperationDefinitionNode, *_: Any
        ) -> None:
            fragments = {
                definition.name.value: definition
                for definition in self.context.document.definitions
                if isinstance(definition, FragmentDefinitionNode)
            }
            if _depth(node.selection_set, fragments, limit) > limit:
                self.report_error(
                    GraphQLError(f"The document is nested deeper than {limit}.", node)
                )

    return MaxTotalDepth


def _depth(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    limit: int,
    depth: int = 0,
    seen: frozenset[str] = frozenset(),
) -> int:
    """Depth of a selection, counting every field, stopping once past `limit`."""
    if selection_set is None or depth > limit:
        return depth
    deepest = depth
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            below = _depth(selection.selection_set, fragments, limit, depth + 1, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in seen or name not in fragments:
                continue  # cycles and unknown names are other rules' errors
            below = _depth(
                fragments[name].selection_set, fragments, limit, depth, seen | {name}
            )
        elif isinstance(selection, InlineFragmentNode):
            below = _depth(selection.selection_set, fragments, limit, depth, seen)
        else:
            continue
        deepest = max(deepest, below)
    return deepest


def document_rules(
    *, max_depth: int, max_aliases: int, max_directives: int
) -> list[type[ASTValidationRule]]:
    """The validation rules of the limits; the token cap applies while parsing."""
    return [
        *QueryDepthLimiter(max_depth=max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules,
        OneGuessPerDocument,
        max_directives_rule(max_directives),
        max_total_depth_rule(MAX_INTROSPECTION_DEPTH),
        MaxIntrospectionDepthRule,
    ]
