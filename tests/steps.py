"""Failure injection for the resumable multi-document writes (services/steps.py): the real
operation runs against the real database with a failing step put between two of its steps.

One mechanism for every such operation (deleteLead, convertLeadToDeal): `inject` replaces the
module's `STEPS` for one test; `between` names every place a crash can happen.
"""

from types import ModuleType
from typing import Any

import pytest

from services.steps import Step


class Crash(Exception):
    """Stands for the process dying, or the database connection dropping, mid-operation."""


async def _crash(state: object) -> None:
    raise Crash(f"injected into {type(state).__name__}")


CRASH: Step[Any] = Step("crash", _crash)


def steps_of(module: ModuleType) -> tuple[Step[Any], ...]:
    steps: tuple[Step[Any], ...] = module.STEPS
    return steps


def between(steps: tuple[Step[Any], ...]) -> dict[str, int]:
    """Every place between two steps: position k crashes after steps[k - 1], before steps[k]."""
    return {f"after {steps[k - 1].name}": k for k in range(1, len(steps))}


def with_step(
    steps: tuple[Step[Any], ...], position: int, step: Step[Any]
) -> tuple[Step[Any], ...]:
    return (*steps[:position], step, *steps[position:])


def inject(
    monkeypatch: pytest.MonkeyPatch,
    module: ModuleType,
    position: int,
    step: Step[Any] = CRASH,
    *,
    steps: tuple[Step[Any], ...] | None = None,
    name: str = "STEPS",
) -> None:
    """Until the test ends (or `restore`), `module`'s operation runs `step` at `position` of
    `steps` (default: its own STEPS); `name` is the module's attribute holding them."""
    own: tuple[Step[Any], ...] = getattr(module, name)
    monkeypatch.setattr(module, name, with_step(steps or own, position, step))


def restore(
    monkeypatch: pytest.MonkeyPatch, module: ModuleType, steps: tuple[Step[Any], ...]
) -> None:
    monkeypatch.setattr(module, "STEPS", steps)
