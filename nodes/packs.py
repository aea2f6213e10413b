"""Node packs: node types from other installed Python packages.

A package declares, in its pyproject.toml,

    [project.entry-points."latentgraph.nodes"]
    tint = "latentgraph_tint.nodes"

and that module declares its node types with the same `@node` as the built-in ones
(docs/writing-a-node.md). The registry imports each such module once, after the built-in nodes.
A pack that fails to import, or that declares a node type that already exists (built in or from
another pack), is left out entirely and reported: a warning on stderr, and `failed_packs` in the
catalog. The rest keeps working. A pack's version (its distribution's) enters the cache keys of its
nodes, beside each node's own version, so upgrading a pack re-runs its nodes.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points

from latentgraph.nodes import spec

GROUP = "latentgraph.nodes"

log = logging.getLogger(__name__)


@dataclass
class Pack:
    name: str  # the distribution (pip) name
    version: str
    entry_point: str  # "name = module" as declared
    nodes: list[str] = field(default_factory=list)
    error: str | None = None  # why it was left out

    def to_json(self) -> dict:
        doc = {"name": self.name, "version": self.version, "entry_point": self.entry_point}
        return {**doc, "error": self.error} if self.error else {**doc, "nodes": self.nodes}


PACKS: list[Pack] = []  # every pack found, in load order; filled by load() once per process
_lock = threading.Lock()
_loaded = False


def load() -> list[Pack]:
    """Import every installed pack once (later calls return what the first found)."""
    global _loaded
    with _lock:
        if not _loaded:
            _loaded = True
            found = sorted(entry_points(group=GROUP), key=lambda ep: (ep.dist.name if ep.dist else "", ep.name))
            PACKS.extend(_load_one(ep) for ep in found)
    return PACKS


def loaded() -> list[Pack]:
    return [pack for pack in PACKS if pack.error is None]


def failed() -> list[Pack]:
    return [pack for pack in PACKS if pack.error is not None]


def _load_one(ep: EntryPoint) -> Pack:
    dist = ep.dist
    pack = Pack(dist.name if dist else ep.name, dist.version if dist else "0", f"{ep.name} = {ep.value}")
    spec.LOADING_PACK = pack.name
    try:
        ep.load()  # importing the module runs its @node declarations
    except Exception as exc:  # whatever a third-party module raises: reported, never fatal
        pack.error = f"{type(exc).__name__}: {exc}"
    finally:
        spec.LOADING_PACK = None
    # The pack's node types: those whose function lives in the entry point's top-level package
    # (whether this import or an earlier one declared them).
    top = ep.module.split(".")[0]
    added = [name for name, s in spec.REGISTRY.items() if s.function.__module__.split(".")[0] == top]
    if pack.error is None and not added:
        pack.error = f"module {ep.module!r} declares no node types"
    if pack.error is not None:
        for name in added:  # half a pack is not kept: its nodes may rely on the part that failed
            del spec.REGISTRY[name]
        log.warning("latentgraph: node pack %s %s (%s) is left out: %s", pack.name, pack.version,
                    pack.entry_point, pack.error)
        return pack
    for name in added:
        spec.REGISTRY[name] = dataclasses.replace(spec.REGISTRY[name], pack=pack.name, pack_version=pack.version)
    pack.nodes = sorted(added)
    return pack
