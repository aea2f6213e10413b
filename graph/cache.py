"""Content keys for node results, and the memory-bounded caches that hold them.

A node's key is a sha256 over its type, its version, its constant inputs, the keys of the results
it reads and the content of the files it names. Node ids never enter it, so identical subgraphs
share results, and keys are the same in every process.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Files up to this size are hashed whole; larger ones (multi-GB checkpoints) by their size and
# sampled chunks, which tells real checkpoints apart at a fraction of the cost.
_WHOLE_FILE_LIMIT = 256 << 20
_CHUNK = 4 << 20
_digest_memo: dict[tuple, str] = {}
_memo_lock = threading.Lock()


def _folder_signature(folder: str) -> tuple:
    """(relative path, size, mtime) of every file under a folder, in path order: one stat per file."""
    files, pending = [], [(folder, "")]
    while pending:
        current, prefix = pending.pop()
        with os.scandir(current) as entries:
            for entry in entries:
                name = prefix + entry.name
                if entry.is_dir():
                    pending.append((entry.path, name + "/"))
                elif entry.is_file():
                    stat = entry.stat()
                    files.append((name, stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(files, key=lambda f: f[0].split("/")))


def file_digest(path: Path) -> str:
    """sha256 of a file's content, or of a folder's files (names and contents).

    Both are remembered under the files' sizes and modification times: a run re-reads no content
    and, for a folder (a diffusers checkpoint), hashes nothing again while no file in it changed."""
    path = Path(path)
    if path.is_dir():
        signature = (os.path.abspath(path), _folder_signature(str(path)))
        with _memo_lock:
            if signature in _digest_memo:
                return _digest_memo[signature]
        h = hashlib.sha256()
        for name, _, _ in signature[1]:
            h.update(name.encode() + b"\0" + file_digest(path / name).encode())
        digest = h.hexdigest()
        with _memo_lock:
            _digest_memo[signature] = digest
        return digest
    stat = path.stat()
    memo_key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _memo_lock:
        if memo_key in _digest_memo:
            return _digest_memo[memo_key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        if stat.st_size <= _WHOLE_FILE_LIMIT:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        else:
            h.update(f"sampled:{stat.st_size}".encode())
            for n in range(16):
                f.seek((stat.st_size - _CHUNK) * n // 15)
                h.update(f.read(_CHUNK))
    digest = h.hexdigest()
    with _memo_lock:
        _digest_memo[memo_key] = digest
    return digest


def node_key(node_type: str, version: int | str, values: dict[str, Any], upstream: dict[str, tuple[str, str]],
             files: dict[str, str], salt: str) -> str:
    payload = {"type": node_type, "version": version, "values": values,
               "upstream": {name: list(ref) for name, ref in upstream.items()}, "files": files, "salt": salt}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Entry:
    outputs: tuple
    ui: dict = field(default_factory=dict)  # what an output node showed (saved images)
    size: int = 0
    models: frozenset = frozenset()  # ids of the loaded models' modules its outputs refer to


class LRUPool:
    """Least-recently-used entries go first once the sizes add up to more than the budget."""

    def __init__(self, budget: int):
        self.budget = budget
        self.entries: OrderedDict[str, Entry] = OrderedDict()
        self.used = 0
        self.lock = threading.Lock()

    def get(self, key: str) -> Entry | None:
        with self.lock:
            entry = self.entries.get(key)
            if entry is not None:
                self.entries.move_to_end(key)
            return entry

    def put(self, key: str, entry: Entry) -> list[Entry]:
        """Store an entry; returns the entries evicted (the new one too, if it alone is over budget)."""
        with self.lock:
            if key in self.entries:
                self.used -= self.entries.pop(key).size
            self.entries[key] = entry
            self.used += entry.size
            evicted = []
            while self.used > self.budget and self.entries:
                _, old = self.entries.popitem(last=False)
                self.used -= old.size
                evicted.append(old)
            return evicted

    def drop_if(self, predicate) -> None:
        with self.lock:
            for key in [k for k, e in self.entries.items() if predicate(e)]:
                self.used -= self.entries.pop(key).size

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()
            self.used = 0

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def __len__(self) -> int:
        return len(self.entries)


class ResultCache:
    """Two pools: loaded models (checkpoint loaders' outputs) and intermediate results."""

    def __init__(self, result_budget: int, model_budget: int):
        self.results = LRUPool(result_budget)
        self.models = LRUPool(model_budget)

    def store(self, key: str, entry: Entry, holds_models: bool) -> None:
        evicted = (self.models if holds_models else self.results).put(key, entry)
        gone = frozenset().union(*(e.models for e in evicted)) if holds_models else frozenset()
        if gone:
            # Results that still refer to an evicted model (a LoRA'd MODEL, a clip-skipped CLIP)
            # would keep it in memory and be stale once the checkpoint is loaded again.
            self.results.drop_if(lambda e: bool(e.models & gone))

    def get(self, key: str) -> Entry | None:
        return self.results.get(key) or self.models.get(key)

    def clear(self) -> None:
        self.results.clear()
        self.models.clear()
