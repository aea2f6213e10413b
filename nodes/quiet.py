"""Library output that users cannot act on, hidden where latentgraph causes it (CLI, server and
Python API alike): diffusers' and transformers' loading bars and notices while a loader node loads
a model, and torchsde's warnings about rounding in its Brownian interval (dpmpp_sde)."""
from __future__ import annotations

import contextlib
import warnings


@contextlib.contextmanager
def quiet_loading():
    """Bars and notices off for the duration; the libraries' own settings come back afterwards."""
    import diffusers.utils.logging as diffusers_log
    import transformers.utils.logging as transformers_log

    saved = [(lib, lib.get_verbosity(), lib.is_progress_bar_enabled()) for lib in (diffusers_log, transformers_log)]
    for lib, _, _ in saved:
        lib.set_verbosity_error()
        lib.disable_progress_bar()
    try:
        yield
    finally:
        for lib, verbosity, bars in saved:
            lib.set_verbosity(verbosity)
            if bars:
                lib.enable_progress_bar()


def hide_torchsde_rounding() -> None:
    """torchsde warns when a query time falls a rounding error outside its interval ("Should have
    ta>=t0 but got ta=0.0291675366461277 and t0=0.029168"): it clamps and goes on."""
    warnings.filterwarnings("ignore", message=r"Should have t[ab]", category=UserWarning, module=r"torchsde\.")
