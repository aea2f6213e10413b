"""Prompt emphasis and prompts longer than the text encoder's window, as ComfyUI reads them.

Syntax: `(words)` weighs the words 1.1, `(words:1.5)` 1.5; nesting multiplies (`((words))` is
1.21); `\\(` and `\\)` are literal parentheses, and so is a parenthesis without a partner.

A prompt is split into windows of the tokenizer's length less its start and end tokens (75 for
CLIP), each encoded alone and the results joined along the sequence. A weighted token's hidden
state is moved away from what the empty prompt gives at that position: `empty + w * (z - empty)`.
A prompt with no weights that fits in one window gives exactly diffusers' `encode_prompt` result.
"""
from __future__ import annotations

import math
import re

from latentgraph.lazy import torch
from latentgraph.nodes import embeddings

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


def parse(text: str) -> list[tuple[str, float]]:
    """Split a prompt into (text, weight) pieces; adjacent pieces of equal weight are merged."""
    pieces: list[tuple[str, float]] = []
    _parse(_hide_escaped(text), 1.0, pieces)
    merged: list[tuple[str, float]] = []
    for piece, weight in pieces:
        piece = piece.replace(_OPEN, "(").replace(_CLOSE, ")")
        if merged and merged[-1][1] == weight:
            merged[-1] = (merged[-1][0] + piece, weight)
        elif piece:
            merged.append((piece, weight))
    return merged


# Escaped parentheses become private-use characters while parsing, so that they never group.
_OPEN, _CLOSE = "\ue000", "\ue001"


def _hide_escaped(text: str) -> str:
    return text.replace("\\(", _OPEN).replace("\\)", _CLOSE)


def _partner(text: str, start: int) -> int:
    """Index of the ')' closing the '(' at `start`, or -1."""
    depth = 0
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i
    return -1


def _parse(text: str, weight: float, out: list) -> None:
    i = 0
    while i < len(text):
        start = text.find("(", i)
        if start < 0:  # no more groups
            out.append((text[i:], weight))
            return
        end = _partner(text, start)
        if end < 0:  # a '(' without a partner is text
            out.append((text[i:start + 1], weight))
            i = start + 1
            continue
        out.append((text[i:start], weight))
        inner, factor = text[start + 1:end], 1.1
        colon = inner.rfind(":")
        if colon >= 0 and _NUMBER.fullmatch(inner[colon + 1:].strip()):
            inner, factor = inner[:colon], float(inner[colon + 1:])
        _parse(inner, weight * factor, out)
        i = end + 1


def token_weights(tokenizer, text: str, vectors=None) -> list[tuple[int, float, torch.Tensor | None]]:
    """The prompt's tokens (no start/end tokens): (id, weight, None), or for the vectors of an
    `embedding:name`, (a placeholder id, weight, vector); `vectors(name)` gives those
    (`Embeddings.lookup`)."""
    tokens: list[tuple[int, float, torch.Tensor | None]] = []
    for piece, weight in parse(text):
        for k, part in enumerate(re.split(embeddings.PATTERN, piece)):
            if k % 2:  # the name of an embedding
                tokens += [(tokenizer.bos_token_id, weight, v) for v in vectors(part)]
            elif part:
                ids = tokenizer(part, add_special_tokens=False, verbose=False).input_ids
                tokens += [(i, weight, None) for i in ids]
    return tokens


def windows(tokenizer, text: str, at_least: int = 1, vectors=None):
    """(input ids, attention mask, weights, injected vectors), one row per window of the tokenizer's
    length: start token, up to length-2 of the prompt's tokens, end token, padding (as the
    tokenizer pads). Windows past the prompt's end, up to `at_least`, hold the empty prompt.
    Embedding vectors come as (window, position, vector); their ids are placeholders (the start
    token's id, which neither the end-of-text nor the pooled-output lookup takes for the end)."""
    size = tokenizer.model_max_length
    tokens, per_window = token_weights(tokenizer, text, vectors), size - 2
    ids, mask, weights, injected = [], [], [], []
    for k in range(max(at_least, math.ceil(len(tokens) / per_window))):
        part = tokens[k * per_window:(k + 1) * per_window]
        pad = size - len(part) - 2
        ids.append([tokenizer.bos_token_id, *(i for i, _, _ in part), tokenizer.eos_token_id]
                   + [tokenizer.pad_token_id] * pad)
        mask.append([1] * (len(part) + 2) + [0] * pad)
        weights.append([1.0, *(w for _, w, _ in part), 1.0] + [1.0] * pad)
        injected += [(k, 1 + p, v) for p, (_, _, v) in enumerate(part) if v is not None]
    return torch.tensor(ids), torch.tensor(mask), torch.tensor(weights), injected


def count(tokenizer, text: str, vectors=None) -> int:
    """How many windows the prompt takes."""
    return max(1, math.ceil(len(token_weights(tokenizer, text, vectors)) / (tokenizer.model_max_length - 2)))


def encode(tokenizer, text: str, run, device, at_least: int = 1, vectors=None,
           token_embedding=None) -> tuple[torch.Tensor, object]:
    """Encode a prompt with `run(input_ids, attention_mask) -> (hidden states, extra)`, window by
    window; weigh the tokens; join the windows along the sequence. Returns the hidden states
    (1, windows * length, width) and the first window's `extra` (SDXL's pooled output).
    `vectors(name)` and `token_embedding` (the encoder's input embedding layer) serve
    `embedding:name`."""
    ids, mask, weights, injected = windows(tokenizer, text, at_least, vectors)
    hook = embeddings.replacing(token_embedding, injected) if injected else None
    try:
        hidden, extra = run(ids.to(device), mask.to(device))
    finally:
        if hook is not None:
            hook.remove()
    if (weights != 1.0).any():
        empty_ids, empty_mask, _, _ = windows(tokenizer, "")
        empty, _ = run(empty_ids.to(device), empty_mask.to(device))
        w = weights.to(device=hidden.device, dtype=hidden.dtype)[..., None]
        hidden = empty + w * (hidden - empty)
    first = extra[:1] if isinstance(extra, torch.Tensor) else extra
    return hidden.reshape(1, -1, hidden.shape[-1]), first


def pad_to_common_length(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """Conditionings of different lengths (in whole windows) for one batch: each repeated along the
    sequence up to the least common multiple of the lengths. Cross-attention over keys that all
    appear the same number of times gives what it gives over one copy of them."""
    lengths = {t.shape[1] for t in tensors}
    if len(lengths) == 1:
        return tensors
    common = math.lcm(*lengths)
    return [t.repeat(1, common // t.shape[1], 1) for t in tensors]
