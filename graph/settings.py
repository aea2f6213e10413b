"""Run settings shared by the CLI, the Python API and the server: folders, device, dtype, budgets."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from latentgraph.graph.limits import Limits
from latentgraph.lazy import torch

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
          "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}


def parse_bytes(text: str | int | None) -> int | None:
    """'512MB', '2GiB', '0' or a plain number of bytes; None or 'auto' means the default."""
    if text is None or isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*([0-9.]+)\s*([a-zA-Z]*)\s*", str(text))
    if str(text).strip().lower() == "auto":
        return None
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(f"not a size: {text!r} (try 512MB or 2GiB)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def _env_path(name: str, default: str) -> Path:
    return Path(os.environ.get(name, default))


@dataclass
class Settings:
    models: Path = field(default_factory=lambda: _env_path("LATENTGRAPH_MODELS", "models"))
    input: Path = field(default_factory=lambda: _env_path("LATENTGRAPH_INPUT", "input"))
    output: Path = field(default_factory=lambda: _env_path("LATENTGRAPH_OUTPUT", "output"))
    temp: Path = field(default_factory=lambda: _env_path("LATENTGRAPH_TEMP", "temp"))
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: str | None = None  # float32 | float16 | bfloat16; None: float16 on CUDA, float32 on CPU
    cache_budget: int | None = None  # bytes for intermediate results; None: a default per device
    model_budget: int | None = None  # bytes for loaded models; None: a default per device
    threads: int | None = None  # torch's CPU threads (--threads); None: torch's default
    compile: bool = False  # torch.compile the UNet and the VAE decoder (--compile)
    limits: Limits = field(default_factory=Limits)  # most nodes, nesting and bytes one workflow may have

    def __post_init__(self):
        for name in ("models", "input", "output", "temp"):
            setattr(self, name, Path(getattr(self, name)))
        self.cache_budget = parse_bytes(self.cache_budget)
        self.model_budget = parse_bytes(self.model_budget)
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ValueError(f"threads must be a whole number of at least 1, got {self.threads!r}")

    def apply_threads(self) -> None:
        """Set torch's CPU threads (process-wide) where `threads` is given: the intra-op pool, and the
        inter-op pool while torch still allows it (only before its first parallel work)."""
        if self.threads is None:
            return
        torch.set_num_threads(self.threads)
        try:
            torch.set_num_interop_threads(self.threads)
        except RuntimeError:
            pass

    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        device = torch.device(self.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda was asked for, but PyTorch sees no CUDA device")
        return device

    def torch_dtype(self) -> torch.dtype:
        if self.dtype is None:
            # As in diffusers' examples: half precision on the GPU, full precision on the CPU.
            return torch.float16 if self.torch_device().type == "cuda" else torch.float32
        try:
            return {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16,
                    "fp16": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}[self.dtype]
        except KeyError:
            raise ValueError(f"unknown dtype {self.dtype!r}: use float32, float16 or bfloat16") from None

    def budgets(self) -> tuple[int, int]:
        """(intermediate cache bytes, loaded models bytes)."""
        device = self.torch_device()
        if device.type == "cuda":
            total = torch.cuda.get_device_properties(device).total_memory
            defaults = (total // 5, total * 3 // 5)
        else:
            total = _physical_memory()
            defaults = (min(total // 8, 4 << 30), total // 2)
        return (self.cache_budget if self.cache_budget is not None else defaults[0],
                self.model_budget if self.model_budget is not None else defaults[1])


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30
