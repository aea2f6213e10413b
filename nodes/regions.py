"""Regional prompts at sampling: the region and weight of a prompt with an area, a mask or a
strength (ConditioningSetArea, ...Percentage, ...Strength, ConditioningSetMask), and the prediction
that weighs such prompts as ComfyUI does."""
from __future__ import annotations

from latentgraph.graph.errors import InputError
from latentgraph.lazy import F, torch
from latentgraph.nodes.controlnet import Controls
from latentgraph.nodes.masks import edge_ramp
from latentgraph.nodes.values import Conditioning, DiffusionModel

FEATHER = 8  # latent cells over which an area's inner edges fade in (ComfyUI's)


def region_weight(cond: Conditioning, model: DiffusionModel, shape: tuple[int, ...], name: str):
    """(rows, columns, weight) of a prompt with an area, a mask or a strength: the latent region the
    model is run on for it, and its weight there (1, 1, h, w), as ComfyUI weighs area prompts."""
    height, width = shape[-2:]
    mask = None
    rows, cols = slice(0, height), slice(0, width)
    if cond.mask is not None:
        mask = F.interpolate(cond.mask[None].float(), size=(height, width), mode="bilinear")
        if cond.mask_bounds:
            ys, xs = torch.nonzero(mask[0, 0] > 0, as_tuple=True)
            if len(ys) == 0:
                raise InputError(name, "the conditioning's mask is empty: 'mask bounds' has no area to act on")
            rows, cols = slice(int(ys.min()), int(ys.max()) + 1), slice(int(xs.min()), int(xs.max()) + 1)
    elif cond.area is not None:
        x, y, w, h = cond.area
        if cond.area_fraction:
            x, y, w, h = round(x * width), round(y * height), round(w * width), round(h * height)
        else:
            f = model.vae_scale_factor
            x, y, w, h = int(x) // f, int(y) // f, int(w) // f, int(h) // f
        x, y = min(x, width - 1), min(y, height - 1)
        rows, cols = slice(y, min(y + h, height)), slice(x, min(x + w, width))
    weight = torch.ones(1, 1, rows.stop - rows.start, cols.stop - cols.start) * cond.strength
    if mask is not None:
        weight = mask[..., rows, cols] * cond.strength
    elif cond.area is not None:  # fade in over the edges that lie inside the picture
        fades = []
        for span, size in ((rows, height), (cols, width)):
            ramp, flat = edge_ramp(span.stop - span.start, FEATHER), torch.ones(span.stop - span.start)
            fades.append((ramp if span.start != 0 else flat) * (ramp.flip(0) if span.stop < size else flat))
        weight = weight * fades[0][:, None] * fades[1][None, :]
    return rows, cols, weight


def active_groups(conds: list[Conditioning], n_negative: int, do_cfg: bool, t) -> tuple[list[int], list[int]]:
    """Indices of the negative and of the positive prompts acting at timestep t (the negatives come
    first in `conds`); a side left without one, where guidance needs it, is an error."""
    active = [g for g, c in enumerate(conds) if c.active_at(t)]
    negatives, positives = [g for g in active if g < n_negative], [g for g in active if g >= n_negative]
    for groups, name in ((positives, "positive"), (negatives, "negative")):
        if not groups and (do_cfg or name == "positive"):
            raise InputError(name, f"no prompt of this conditioning acts at timestep {float(t):.0f}: give "
                                   "ConditioningSetTimestepRange ranges that cover 0 to 1 together")
    return negatives, positives


def weighted_predictor(model: DiffusionModel, conds: list[Conditioning], names: list[str], n_negative: int,
                       do_cfg: bool, cfg: float, embeds, added, controls: Controls, batch: int):
    """`combined_predictor` for prompts with areas, masks or strengths, as ComfyUI weighs them: on each
    side of the guidance, each active prompt's prediction on its region, times its weight, summed and
    divided by the summed weights (a part no prompt covers gets a zero prediction)."""
    regions: dict[int, tuple] = {}

    def side(scheduler, latents, t, step, total, members):
        model_input = scheduler.scale_model_input(latents, t)
        summed = torch.zeros_like(latents)
        weights = torch.full_like(latents, 1e-37)  # ComfyUI's: no division by zero where nothing acts
        for g in members:
            if g not in regions:
                regions[g] = region_weight(conds[g], model, tuple(latents.shape), names[g])
            rows, cols, weight = regions[g]
            full = rows.stop - rows.start == latents.shape[-2] and cols.stop - cols.start == latents.shape[-1]
            if conds[g].control and not full:
                raise InputError(names[g], "a ControlNet on a prompt with an area or mask bounds is not supported: "
                                           "apply the ControlNet to a prompt for the whole picture")
            index = torch.arange(g * batch, (g + 1) * batch, device=latents.device)
            part = model_input[..., rows, cols]
            added_rows = {k: v[index] for k, v in added.items()} if added else None
            residuals = controls.residuals(part, t, embeds[index], added_rows, step, total, [g]) if full else {}
            out = model.denoiser(part, t, encoder_hidden_states=embeds[index], timestep_cond=None,
                             cross_attention_kwargs=None, added_cond_kwargs=added_rows, return_dict=False,
                             **residuals)[0]
            weight = weight.to(out)
            summed[..., rows, cols] += out * weight
            weights[..., rows, cols] += weight
        return summed / weights

    def predict(scheduler, latents, t, step: int = 0, total: int = 1):
        negatives, positives = active_groups(conds, n_negative, do_cfg, t)
        cond = side(scheduler, latents, t, step, total, positives)
        if not do_cfg:
            return cond
        uncond = side(scheduler, latents, t, step, total, negatives)
        return model.guide(uncond, cond, cfg)
    return predict
