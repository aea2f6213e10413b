"""--compile: torch.compile of the UNet and of the VAE's decode, made once per loaded module and
kept with it, so every run reuses it (torch.compile keeps a compiled graph per input shape it has
met: a new size compiles once, then is reused too). On CUDA the weights go channels_last first,
the layout its convolution kernels are fastest in."""
from __future__ import annotations

import weakref

import torch

_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # module -> {method name: compiled}


def compiled(module, method: str = "forward"):
    """`module.<method>`, compiled (the first call for a new shape compiles, later ones reuse it)."""
    functions = _COMPILED.setdefault(module, {})
    if method not in functions:
        if next(module.parameters()).device.type == "cuda":
            module.to(memory_format=torch.channels_last)
        functions[method] = torch.compile(getattr(module, method))
    return functions[method]
