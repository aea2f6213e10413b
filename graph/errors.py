"""Errors that name the node and the input, the same over every interface."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class GraphError:
    kind: str
    message: str
    node_id: str | None = None
    node_type: str | None = None
    input: str | None = None

    def to_json(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return self.message


def describe(node_id: str | None, node_type: str | None, input_name: str | None = None) -> str:
    """'KSampler 'sampler', input 'steps'' — the prefix every message starts with."""
    where = f"{node_type or 'node'} '{node_id}'" if node_id is not None else "workflow"
    return f"{where}, input '{input_name}'" if input_name else where


def shown(value: Any, limit: int = 60) -> str:
    """A value as an error message quotes it: short, whatever its size (a 5,000-digit number, a
    megabyte of text or a nested list would otherwise fill, or break, the message)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        digits = int(value.bit_length() * math.log10(2)) + 1  # one too many, or right
        if value.bit_length() > 1 << 17:  # beyond about 40,000 digits, checking costs too much
            return f"a number of about {digits:,} digits"
        return f"a {digits - (abs(value) < 10 ** (digits - 1)):,}-digit number"
    if isinstance(value, dict):
        return f"an object of {len(value)} {'entry' if len(value) == 1 else 'entries'}"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} {'item' if len(value) == 1 else 'items'}"
    text = repr(value[:limit] if isinstance(value, str) else value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class WorkflowFormatError(ValueError):
    """The document is not a workflow in any format we read (or is beyond the limits on its size,
    node count or nesting)."""


class WorkflowInvalid(Exception):
    """Validation found problems; nothing was executed."""

    def __init__(self, errors: list[GraphError]):
        self.errors = list(errors)
        super().__init__("\n".join(e.message for e in self.errors))


class NodeError(Exception):
    """A node failed while running."""

    def __init__(self, error: GraphError):
        self.error = error
        self.result = None  # the run's RunResult (what was computed before the failure), where known
        super().__init__(error.message)


class Interrupted(Exception):
    """The run was interrupted between two steps."""


class InputError(ValueError):
    """Raised by a node's function for a bad input value it only finds at run time."""

    def __init__(self, input_name: str, message: str):
        self.input_name = input_name
        super().__init__(message)
