"""Prompt emphasis `(words:1.5)` and prompts longer than CLIP's window, as ComfyUI reads them.
References are computed with the checkpoint's own tokenizer and text encoder, window by window."""
from __future__ import annotations

import pytest
import torch
from helpers import read_png, txt2img
from sdxl_helpers import loaded, sdxl_executor, sdxl_models_dir, sdxl_settings, sdxl_txt2img  # noqa: F401

from latentgraph.nodes import sdxl
from latentgraph.nodes.conditioning import encode
from latentgraph.nodes.prompt_weights import pad_to_common_length, parse


@pytest.mark.parametrize("text, pieces", [
    ("a red circle", [("a red circle", 1.0)]),
    ("a (red) circle", [("a ", 1.0), ("red", 1.1), (" circle", 1.0)]),
    ("((red))", [("red", pytest.approx(1.21))]),
    ("(red:1.5) and (blue:0.5)", [("red", 1.5), (" and ", 1.0), ("blue", 0.5)]),
    ("(a (red:2) circle:0.5)", [("a ", 0.5), ("red", 1.0), (" circle", 0.5)]),
    ("x (y:1.0) z", [("x y z", 1.0)]),
    (r"\(red\) (blue)", [("(red) ", 1.0), ("blue", 1.1)]),
    ("(red", [("(red", 1.0)]),
    ("(a (red) circle", [("(a ", 1.0), ("red", 1.1), (" circle", 1.0)]),
    ("red) (blue", [("red) (blue", 1.0)]),
    ("(red:abc)", [("red:abc", 1.1)]),
    ("", []),
])
def test_parse(text, pieces):
    assert parse(text) == pieces


@pytest.fixture
def clip(executor):
    executor.run(txt2img(steps=1))
    ((_, clip, _),) = executor.loaded_models()
    return clip


def raw(clip, ids: list[int]) -> torch.Tensor:
    """The text encoder's last hidden state for one window of token ids, padded as the tokenizer pads."""
    tok = clip.tokenizers[0]
    window = [tok.bos_token_id, *ids, tok.eos_token_id]
    window += [tok.pad_token_id] * (tok.model_max_length - len(window))
    with torch.no_grad():
        return clip.encoders[0](torch.tensor([window]))[0]


def ids_of(clip, text: str) -> list[int]:
    return clip.tokenizers[0](text, add_special_tokens=False, verbose=False).input_ids


def test_a_weight_moves_its_tokens_away_from_the_empty_prompt(clip):
    plain, empty = raw(clip, ids_of(clip, "a red circle")), raw(clip, [])
    red = 1 + len(ids_of(clip, "a"))  # after the start token and "a"
    expected = plain.clone()
    expected[:, red] = empty[:, red] + 1.5 * (plain[:, red] - empty[:, red])
    ours = encode(clip, "a (red:1.5) circle").embeds
    torch.testing.assert_close(ours, expected)
    assert (ours[:, red] - plain[:, red]).abs().max() > 1e-3
    assert torch.equal(encode(clip, "a (red:1.0) circle").embeds, encode(clip, "a red circle").embeds)


def test_a_long_prompt_is_encoded_in_windows_not_cut(clip):
    text = " ".join(["a large red circle on a blue background"] * 8)
    ids = ids_of(clip, text)
    assert 75 < len(ids) <= 150
    embeds = encode(clip, text).embeds
    assert embeds.shape[1] == 2 * 77
    torch.testing.assert_close(embeds[:, :77], raw(clip, ids[:75]))
    torch.testing.assert_close(embeds[:, 77:], raw(clip, ids[75:]))


def test_repeating_a_conditioning_to_a_common_length_leaves_the_unet_output(executor, clip):
    ((model, _, _),) = executor.loaded_models()
    short = encode(clip, "a red circle").embeds
    long = encode(clip, " ".join(["a blue square"] * 30)).embeds
    padded_short, padded_long = pad_to_common_length([short, long])
    assert padded_short.shape == padded_long.shape == long.shape
    latents = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        once = model.unet(latents, 500, encoder_hidden_states=short).sample
        repeated = model.unet(latents, 500, encoder_hidden_states=padded_short).sample
    torch.testing.assert_close(repeated, once, atol=1e-5, rtol=1e-4)


def test_long_positive_with_short_negative_samples(executor, clip):
    long = " ".join(["a large red circle on a blue"] * 12)  # one token per word: 84 tokens
    cut = clip.tokenizers[0].decode(ids_of(clip, long)[:75])  # what a truncating encoder would keep
    assert ids_of(clip, cut) == ids_of(clip, long)[:75]
    images = [read_png(executor.run(txt2img(prompt=p, seed=2)).images[0]["path"]) for p in (long, cut)]
    assert images[0].shape == (64, 64, 3)
    assert (images[0] != images[1]).any()  # the second window takes part


def test_sdxl_windows_of_both_encoders_line_up(sdxl_executor):  # noqa: F811
    sdxl_executor.run(sdxl_txt2img(steps=1))
    _, clip, _ = loaded(sdxl_executor, "sdxl")
    text = " ".join(["a large red circle"] * 25)
    cond = sdxl.encode_texts(clip, ["a red circle", text])  # ViT-L short, bigG long
    assert cond.embeds.shape[1] == 2 * 77
    widths = [e.config.hidden_size for e in clip.encoders]
    # The short prompt's second window is the empty prompt's.
    empty = sdxl.encode_texts(clip, ["", ""]).embeds[:, :, :widths[0]]
    torch.testing.assert_close(cond.embeds[:, 77:, :widths[0]], empty[:, :77])
    # The pooled output comes from the first window: the same as for the prompt cut to 75 tokens.
    tok = clip.tokenizers[1]
    cut = tok.decode(tok(text, add_special_tokens=False).input_ids[:75])
    torch.testing.assert_close(cond.pooled, sdxl.encode_texts(clip, ["a red circle", cut]).pooled)
    image = read_png(sdxl_executor.run(sdxl_txt2img(prompt=text, steps=2)).images[0]["path"])
    assert image.ndim == 3
