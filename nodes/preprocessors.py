"""Control image preprocessors: pictures turned into the maps ControlNets read."""
from __future__ import annotations

from latentgraph.lazy import torch
from latentgraph.nodes.spec import FLOAT, IMAGE, Input, Output, node


def _thresholds_in_order(values: dict) -> list[tuple[str, str]]:
    if values["high_threshold"] < values["low_threshold"]:
        return [("high_threshold", f"is below low_threshold ({values['low_threshold']})")]
    return []


@node("Canny", category="image/preprocessors",
      description="Canny edge detection (kornia's): white edges on black, the control image of canny ControlNets.",
      inputs=[Input("image", IMAGE),
              Input("low_threshold", FLOAT, default=0.4, min=0.01, max=0.99, step=0.01,
                    tooltip="Gradient strength below which no edge is kept."),
              Input("high_threshold", FLOAT, default=0.8, min=0.01, max=0.99, step=0.01,
                    tooltip="Gradient strength above which an edge is certain; weaker ones are kept where they "
                            "join a certain one.")],
      outputs=[Output("IMAGE", IMAGE)],
      check=_thresholds_in_order)
def canny(ctx, image: torch.Tensor, low_threshold: float, high_threshold: float):
    import kornia.filters

    _, edges = kornia.filters.canny(image.float(), low_threshold, high_threshold)
    return (edges.repeat(1, 3, 1, 1).to(image.dtype),)
