"""Schemathesis driven by hand, for the GraphQL fuzz test and the REST contract test: every
operation of a schema, a fixed number of valid and invalid examples each, the same examples on
every run."""

from collections.abc import Callable
from random import Random
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.core.result import Ok

Operation = schemathesis.APIOperation[Any, Any, Any, Any]
GeneratedCase = schemathesis.Case[Any]
# What `send` gets: the case, a seeded random, and one draw of the caller's `extra` strategy.
type Send = Callable[[GeneratedCase, Random, Any], None]


def fuzz(
    operation: Operation,
    mode: schemathesis.GenerationMode,
    examples: int,
    send: Send,
    extra: st.SearchStrategy[Any],
) -> None:
    """Run `examples` generated cases of `operation` through `send`."""
    cases = st.tuples(
        operation.as_strategy(generation_mode=mode), st.randoms(use_true_random=False), extra
    )

    @settings(
        max_examples=examples,
        derandomize=True,  # the same examples on every run
        database=None,  # no .hypothesis/ directory in the repo
        deadline=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(cases)
    def run(drawn: tuple[GeneratedCase, Random, Any]) -> None:
        send(*drawn)

    run()


def fuzz_every_operation(
    schema: Any,
    send: Send,
    *,
    positive: int,
    negative: int,
    before_each: Callable[[], None],
    extra: st.SearchStrategy[Any] | None = None,
) -> int:
    """Valid and invalid examples of each operation of `schema`; returns how many operations."""
    operations = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        before_each()
        for mode, examples in (
            (schemathesis.GenerationMode.POSITIVE, positive),
            (schemathesis.GenerationMode.NEGATIVE, negative),
        ):
            fuzz(operation, mode, examples, send, st.none() if extra is None else extra)
        operations += 1
    return operations
