"""Errors that name the node and the input, the same over every interface."""
from __future__ import annotations

from dataclasses import asdict, dataclass


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


class WorkflowInvalid(Exception):
    """Validation found problems; nothing was executed."""

    def __init__(self, errors: list[GraphError]):
        self.errors = list(errors)
        super().__init__("\n".join(e.message for e in self.errors))


class NodeError(Exception):
    """A node failed while running."""

    def __init__(self, error: GraphError):
        self.error = error
        super().__init__(error.message)


class Interrupted(Exception):
    """The run was interrupted between two steps."""


class InputError(ValueError):
    """Raised by a node's function for a bad input value it only finds at run time."""

    def __init__(self, input_name: str, message: str):
        self.input_name = input_name
        super().__init__(message)
