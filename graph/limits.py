"""Bounds on one workflow document, so that no input costs unbounded time, memory or stack.

Every way in (a JSON file, a request body, a PNG's text chunk, a dict from Python) goes through
`parse` or `check` before anything else reads the document. After them its lists and objects nest
no deeper than `max_depth`, so later code may recurse over it, copy it or serialise it without a
RecursionError. `load_workflow` and validation check node counts against `max_nodes`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from latentgraph.graph.errors import WorkflowFormatError, shown

MAX_NODES = 10_000  # ComfyUI's largest real workflows hold about a thousand
MAX_DEPTH = 64  # ours nest 5 levels, ComfyUI's editor documents (with subgraphs) about 12
MAX_BYTES = 64 << 20


@dataclass(frozen=True)
class Limits:
    max_nodes: int = MAX_NODES
    max_depth: int = MAX_DEPTH
    max_bytes: int = MAX_BYTES


DEFAULT = Limits()


def parse(text: str | bytes, limits: Limits = DEFAULT) -> Any:
    """JSON text (str, or bytes in UTF-8/16/32 with or without a BOM) as checked data."""
    if len(text) > limits.max_bytes:
        raise WorkflowFormatError(f"the document is {size_text(len(text))}, over the limit of "
                                  f"{size_text(limits.max_bytes)}")
    try:
        doc = json.loads(text)
    except RecursionError:  # the C decoder recurses once per level
        raise WorkflowFormatError(f"the document is nested more than {limits.max_depth} levels deep") from None
    except json.JSONDecodeError as exc:
        raise WorkflowFormatError(f"not valid JSON: {exc}") from None
    except UnicodeDecodeError as exc:
        raise WorkflowFormatError(f"not valid JSON: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except ValueError as exc:  # a number of more digits than Python converts (sys.get_int_max_str_digits)
        raise WorkflowFormatError(f"not valid JSON: {str(exc).split(';')[0]}") from None
    return check(doc, limits)


def check(doc: Any, limits: Limits = DEFAULT) -> Any:
    """`doc` itself (not a copy) once its lists and objects are known to nest no deeper than the limit.

    Iterative, so no depth of input can exhaust the stack, and linear in the document's size: it
    visits no more lists and objects than a document of `max_bytes` could hold (a Python structure
    that refers to itself, or shares parts without end, is refused by that bound). Values are not
    checked here: validation names the node and input of any value of the wrong type."""
    budget = limits.max_bytes // 2  # each list or object takes at least two characters of JSON
    stack: list[tuple[Any, int]] = [(doc, 1)] if isinstance(doc, (dict, list, tuple)) else []
    pop, push = stack.pop, stack.append
    while stack:
        value, depth = pop()
        if depth > limits.max_depth:
            raise WorkflowFormatError(f"the document is nested more than {limits.max_depth} levels deep "
                                      f"(under {_deep_path(doc, limits.max_depth)})")
        budget -= 1
        if budget < 0:
            raise WorkflowFormatError(f"the document holds more lists and objects than {size_text(limits.max_bytes)} "
                                      "of JSON could (does it refer to itself?)")
        for child in (value.values() if isinstance(value, dict) else value):
            if isinstance(child, (dict, list, tuple)):
                push((child, depth + 1))
    return doc


def _deep_path(doc: Any, depth: int) -> str:
    """The first steps of a path to a list or object nested deeper than `depth` (for the message)."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(doc, ())]
    while stack:
        value, path = stack.pop()
        if len(path) >= depth:
            return "/".join(path[:6]) + "/..."
        for key, child in (value.items() if isinstance(value, dict) else enumerate(value)):
            if isinstance(child, (dict, list, tuple)):
                stack.append((child, (*path, key[:30] if isinstance(key, str) else shown(key))))
    return "an inner value"


def node_count(doc: Any, kind: str) -> int:
    """How many nodes a document of `kind` (see workflow.detect_format) declares."""
    nodes = doc if kind == "comfyui-api" else doc.get("nodes")
    return len(nodes) if isinstance(nodes, (dict, list)) else 0


def check_node_count(count: int, limits: Limits) -> None:
    if count > limits.max_nodes:
        raise WorkflowFormatError(f"the workflow has {count:,} nodes, over the limit of {limits.max_nodes:,} "
                                  "(a setting: Settings(limits=Limits(max_nodes=...)), or --max-nodes)")


def size_text(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB" if size >= 1 << 20 else f"{size:,} bytes"
