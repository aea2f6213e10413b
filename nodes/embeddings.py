"""Textual inversion: `embedding:name` in a prompt stands for the vectors of a file in
models/embeddings (A1111's `emb_params` or `string_to_param`, SDXL's `clip_l`/`clip_g`, or diffusers'
one-tensor files), put in place of token embeddings as the text encoder reads the prompt.
`.safetensors` files are read as they are; `.pt` / `.bin` ones with torch.load(weights_only=True),
which refuses any pickled object other than tensors and plain containers, so no code in them runs."""
from __future__ import annotations

from pathlib import Path

from latentgraph.graph.errors import InputError
from latentgraph.lazy import torch

PATTERN = r"embedding:([^\s,()]+)"


class Embeddings:
    """The embedding files a prompt may name, and which input of the node names them."""

    def __init__(self, files: dict[str, Path] | None = None, input_name: str = "text"):
        self.files, self.input_name = files or {}, input_name
        self._read: dict[Path, dict[str, torch.Tensor]] = {}  # each file once per prompt node

    def lookup(self, encoder):
        """`vectors(name)` for this text encoder (the width of its token embeddings)."""
        width = token_embedding(encoder).embedding_dim
        return lambda name: self.vectors(name, width)

    def vectors(self, name: str, width: int) -> torch.Tensor:
        """(n, width) vectors of the embedding for a text encoder whose token embeddings are `width` wide."""
        path = self.files.get(name)  # folders.list_embeddings lists names with and without extension
        if path is None:
            raise InputError(self.input_name, f"embedding {name!r} not found in models/embeddings "
                                              "(.safetensors, .pt and .bin files are read)")
        if path not in self._read:
            self._read[path] = self._load(name, path)
        fits = [t for t in self._read[path].values() if t.ndim and t.shape[-1] == width]
        if len(fits) != 1:
            raise InputError(self.input_name, f"embedding {name!r} has {'no' if not fits else 'several'} "
                                              f"vectors {width} wide, the width of this text encoder")
        return fits[0].reshape(-1, width).float()

    def _load(self, name: str, path: Path) -> dict[str, torch.Tensor]:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # UnpicklingError for anything but tensors; also truncated files
            raise InputError(self.input_name, f"embedding {name!r} ({path.name}) holds more than tensors, "
                                              f"so it is not loaded (only plain tensor files are): "
                                              f"{str(exc).splitlines()[0]}") from None
        return dict(tensors_in(data))


def tensors_in(data, key: str = ""):
    """(key, tensor) pairs anywhere in nested dicts / lists: A1111's .pt keeps its vectors in
    string_to_param['*'] beside names and step counts; diffusers' .bin maps its token to one tensor."""
    if isinstance(data, torch.Tensor):
        yield key, data
    elif isinstance(data, dict):
        for k, v in data.items():
            yield from tensors_in(v, f"{key}.{k}" if key else str(k))
    elif isinstance(data, (list, tuple)):
        for i, v in enumerate(data):
            yield from tensors_in(v, f"{key}.{i}")


def token_embedding(encoder) -> torch.nn.Module:
    return encoder.get_input_embeddings()


def replacing(module: torch.nn.Module, injected: list[tuple[int, int, torch.Tensor]]):
    """A forward hook on the token embedding layer that puts the vectors at (window, position)."""
    def hook(_module, _inputs, output):
        output = output.clone()
        for window, position, vector in injected:
            output[window, position] = vector.to(output)
        return output
    return module.register_forward_hook(hook)
