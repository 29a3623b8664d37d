"""A document that passed validation is not validated again (README "Performance").

graphql-core's validation walks the whole document with ~30 rules: a third of the server's
own CPU for a small mutation. Its outcome depends only on the document's text and the
schema, fixed for the life of the process, so a text that once passed passes again.

Only passes are remembered, under a digest of the text (memory stays small whatever clients
send), at most `REMEMBERED` of them, least recently used first out. A document with errors
is validated every time, and every per-request check still runs: the limits
(`api.limits.QueryLimits`, before this), variables, permissions.
"""

from collections import OrderedDict
from collections.abc import Iterator
from hashlib import blake2b

from strawberry.extensions import SchemaExtension

REMEMBERED = 512

_passed: OrderedDict[tuple[object, bytes, tuple[type, ...]], None] = OrderedDict()


class ValidOnce(SchemaExtension):
    """Skips validation for a document text that has passed it in the same schema with the
    same rules."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is None or context.pre_execution_errors is not None:
            yield  # a document given parsed, or already refused by a limit
            return
        digest = blake2b(context.query.encode(), digest_size=16).digest()
        key = (context.schema, digest, context.validation_rules)
        if key in _passed:
            _passed.move_to_end(key)
            context.pre_execution_errors = []  # Strawberry validates only while this is None
            yield
            return
        yield
        if context.pre_execution_errors == []:
            _passed[key] = None
            if len(_passed) > REMEMBERED:
                _passed.popitem(last=False)
