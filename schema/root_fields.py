"""Name each operation by its root fields, for logs and metrics.

Unlike the client's operationName, these come from the schema, so the set of
values stays bounded.
"""

from collections.abc import Iterator

from graphql import FieldNode, OperationDefinitionNode
from strawberry.extensions import SchemaExtension

MULTIPLE = "multiple"


class RootFields(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        context = self.execution_context.context
        document = self.execution_context.graphql_document
        if document is None or not hasattr(context, "root_fields"):
            return
        wanted = self.execution_context.operation_name
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
            context.root_fields = names.pop() if len(names) == 1 else MULTIPLE
            return
