"""Heavy libraries, imported the first time one of their attributes is read.

    from latentgraph.lazy import F, torch

gives stand-ins for `torch` and `torch.nn.functional` that node modules use exactly as the real
modules: declaring the nodes, validating a workflow and listing the catalog never read them, so
`latentgraph nodes`, `validate`, `import` and `--help` start without torch (1.5 s and more saved).
Names imported *from* a heavy package (`from diffusers import X`) go inside the functions that use them.

Unlike `importlib.util.LazyLoader`, nothing is put in `sys.modules`: other libraries' own
`import torch` and their "is torch loaded?" checks see the truth.
"""
from __future__ import annotations

import importlib
import sys
import types


class LazyModule(types.ModuleType):
    """Stands for the module `name`; reading an attribute imports it and reads the real one."""

    def __getattr__(self, attr: str):
        if attr.startswith("__"):  # copy, pickle and introspection probe dunders: never import for them
            raise AttributeError(attr)
        module = sys.modules.get(self.__name__) or importlib.import_module(self.__name__)
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self.__name__!r}>"


torch = LazyModule("torch")
F = LazyModule("torch.nn.functional")
diffusers = LazyModule("diffusers")
