"""Limits on one GraphQL document (README "Limits and hardening"), checked before validation.

`QueryLimits` reads the app's `config.Limits` from the request's `Context` and refuses, with
one request error (no `data`, HTTP 400 under application/graphql-response+json):

- more than `max_tokens` tokens (comments included): the parser stops there;
- a selected operation deeper than `max_query_depth`: the longest chain of nested fields,
  leaf included (`{ me { id } }` is 2), through fragments; introspection fields (`__schema`,
  `__type`, `__typename`) and everything under them are left out, since graphql-core's
  `MaxIntrospectionDepthRule` bounds those, so GraphiQL's and Apollo's introspection
  queries pass;
- more than `max_aliases` aliased fields in the selected operation, a fragment counted as
  often as it is spread (aliases are what lets one query ask for the same field many times);
- `__schema` / `__type` when introspection is off.

Each is BAD_USER_INPUT (FORBIDDEN for introspection) with a message naming the setting.
The checks are linear in the document's size: a fragment is measured once however often it
is spread, so a fragment "bomb" costs no more to check than to read.
"""

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from strawberry.extensions import SchemaExtension

from config import Limits
from resolvers.services.errors import ErrorCode

INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})
# graphql-core's parser, stopped by `max_tokens`: "Syntax Error: Document contains more than
# 2000 tokens. Parsing aborted."
TOKEN_LIMIT = re.compile(r"^Syntax Error: Document contains more than \d+ tokens\b")
INTROSPECTION_DISABLED = (
    "Introspection is disabled on this server; set CRM_INTROSPECTION=true to enable it"
)


@dataclass(frozen=True)
class Shape:
    """What the limits look at in a selection set (or a fragment, or an operation)."""

    depth: int = 0
    aliases: int = 0
    introspection: bool = False

    def beside(self, other: "Shape") -> "Shape":
        """Two sets of selections at the same level."""
        return Shape(
            depth=max(self.depth, other.depth),
            aliases=self.aliases + other.aliases,
            introspection=self.introspection or other.introspection,
        )


def _measure_selections(
    selection_set: SelectionSetNode | None, fragments: Mapping[str, Shape]
) -> Shape:
    """A selection set's shape; `fragments` holds the shapes of the fragments it spreads.

    Recursion follows the document's nesting only, which graphql-core's parser bounds (200).
    """
    shape = Shape()
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FieldNode):
            inner = _measure_selections(selection.selection_set, fragments)
            name = selection.name.value
            aliases = inner.aliases + (selection.alias is not None)
            if name.startswith("__"):  # introspection: not counted toward depth
                field = Shape(aliases=aliases, introspection=name in INTROSPECTION_FIELDS)
            else:
                field = Shape(1 + inner.depth, aliases, inner.introspection)
            shape = shape.beside(field)
        elif isinstance(selection, InlineFragmentNode):
            shape = shape.beside(_measure_selections(selection.selection_set, fragments))
        elif isinstance(selection, FragmentSpreadNode):
            # Unknown fragments and cycles count as nothing: validation refuses them next.
            shape = shape.beside(fragments.get(selection.name.value, Shape()))
    return shape


def _spreads(selection_set: SelectionSetNode | None) -> Iterator[str]:
    """The names of the fragments a selection set spreads, at any depth."""
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FragmentSpreadNode):
            yield selection.name.value
        elif isinstance(selection, FieldNode | InlineFragmentNode):
            yield from _spreads(selection.selection_set)


def _measure_fragments(document: DocumentNode) -> dict[str, Shape]:
    """Every fragment's shape, each measured once, after the fragments it spreads.

    An explicit stack rather than recursion: a chain of fragments may be as long as the
    token limit allows.
    """
    definitions = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    shapes: dict[str, Shape] = {}
    for root in definitions:
        if root in shapes:
            continue
        stack = [(root, iter(list(_spreads(definitions[root].selection_set))))]
        entered = {root}
        while stack:
            name, spreads = stack[-1]
            for spread in spreads:
                if spread in definitions and spread not in shapes and spread not in entered:
                    entered.add(spread)
                    stack.append((spread, iter(list(_spreads(definitions[spread].selection_set)))))
                    break
            else:
                stack.pop()
                shapes[name] = _measure_selections(definitions[name].selection_set, shapes)
    return shapes


def measure(document: DocumentNode, operation_name: str | None = None) -> Shape:
    """The shape of the operation that runs (every operation when none is picked out)."""
    fragments = _measure_fragments(document)
    operations = [
        definition
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode)
    ]
    named = [op for op in operations if op.name and op.name.value == operation_name]
    shape = Shape()
    for operation in named or operations:
        measured = _measure_selections(operation.selection_set, fragments)
        shape = Shape(
            depth=max(shape.depth, measured.depth),
            aliases=max(shape.aliases, measured.aliases),
            introspection=shape.introspection or measured.introspection,
        )
    return shape


def limit_error(message: str) -> GraphQLError:
    """A BAD_USER_INPUT request error about the query as a whole."""
    return GraphQLError(message, extensions=_bad_query(message))


def _bad_query(message: str) -> dict[str, Any]:
    return {
        "code": ErrorCode.BAD_USER_INPUT.value,
        "fieldErrors": [{"field": "query", "message": message}],
    }


def check(
    document: DocumentNode, operation_name: str | None, limits: Limits
) -> GraphQLError | None:
    """The first limit the document breaks, as its one error; None when it keeps them all."""
    shape = measure(document, operation_name)
    if shape.introspection and not limits.introspection:
        return GraphQLError(INTROSPECTION_DISABLED, extensions={"code": ErrorCode.FORBIDDEN.value})
    if shape.depth > limits.max_query_depth:
        return limit_error(
            f"Query depth {shape.depth} exceeds the limit of {limits.max_query_depth}"
            " (CRM_MAX_QUERY_DEPTH)"
        )
    if shape.aliases > limits.max_aliases:
        return limit_error(
            f"Query has {shape.aliases} aliases, more than the limit of {limits.max_aliases}"
            " (CRM_MAX_ALIASES)"
        )
    return None


def token_limit_message(limits: Limits) -> str:
    return f"Query has more than {limits.max_tokens} tokens, the limit (CRM_MAX_TOKENS)"


class QueryLimits(SchemaExtension):
    """Applies the request's `Context.limits` (defaults without one) to every operation."""

    @property
    def limits(self) -> Limits:
        limits = getattr(self.execution_context.context, "limits", None)
        return limits if isinstance(limits, Limits) else Limits()

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.limits.max_tokens
        yield
        # Strawberry has already put the parser's error into the result it returns, so the
        # error is reworded in place (a hook cannot replace it without raising, which would
        # end a subscription's stream instead of answering it).
        for error in context.pre_execution_errors or ():
            if TOKEN_LIMIT.match(error.message):
                error.message = token_limit_message(self.limits)
                error.extensions = _bad_query(error.message)

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            error = check(document, context.operation_name, self.limits)
            if error is not None:
                # Set before validation runs, so Strawberry skips it: one clear error.
                context.pre_execution_errors = [error]
        yield
