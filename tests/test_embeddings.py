"""Textual inversion: `embedding:name` in a prompt gives what diffusers' load_textual_inversion gives
for the same file; SDXL files feed each encoder its own vectors; a missing one names the input."""
from __future__ import annotations

import diffusers
import pytest
import torch
from helpers import read_png, txt2img
from safetensors.torch import save_file
from sdxl_helpers import BASE, loaded, sdxl_models_dir, sdxl_txt2img  # noqa: F401

from latentgraph.graph.errors import NodeError
from latentgraph.graph.executor import Executor
from latentgraph.graph.settings import Settings
from latentgraph.nodes import folders
from latentgraph.nodes.conditioning import encode
from latentgraph.nodes.embeddings import Embeddings


def settings_with(checkpoints, tmp_path, name) -> Settings:
    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    (models / "checkpoints" / name).symlink_to(checkpoints / name)
    (models / "embeddings").mkdir()
    for folder in ("input", "output", "temp"):
        (tmp_path / folder).mkdir()
    return Settings(models=models, input=tmp_path / "input", output=tmp_path / "output", temp=tmp_path / "temp",
                    device="cpu")


def tiny_sd15_loaded(models_dir, tmp_path):
    """Settings with an empty models/embeddings, an executor that has loaded tiny-sd15, its CLIP and width."""
    settings = settings_with(models_dir / "checkpoints", tmp_path, "tiny-sd15")
    executor = Executor(settings)
    executor.run(txt2img(steps=1))
    ((_, clip, _),) = executor.loaded_models()
    return settings, executor, clip, clip.encoders[0].get_input_embeddings().embedding_dim


def test_embedding_equals_diffusers_load_textual_inversion(models_dir, tmp_path):
    settings, executor, clip, width = tiny_sd15_loaded(models_dir, tmp_path)
    path = settings.models / "embeddings" / "style.safetensors"
    save_file({"emb_params": torch.randn(2, width, generator=torch.Generator().manual_seed(3))}, str(path))
    ours = encode(clip, "a photo of embedding:style circle", Embeddings(folders.list_embeddings(settings))).embeds
    pipe = diffusers.StableDiffusionPipeline.from_pretrained(models_dir / "checkpoints" / "tiny-sd15",
                                                             safety_checker=None, requires_safety_checker=False)
    pipe.load_textual_inversion(str(path), token="<style>")
    theirs = pipe.encode_prompt("a photo of <style> circle", "cpu", 1, False)[0]
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-6)
    assert (ours - encode(clip, "a photo of circle").embeds).abs().max() > 1e-3

    wf = txt2img(negative="embedding:style", steps=3)
    assert read_png(executor.run(wf).images[0]["path"]).std() > 1  # in a graph, by name without extension
    wf = txt2img(negative="embedding:absent", steps=3)
    with pytest.raises(NodeError) as refused:
        executor.run(wf)
    assert refused.value.error.node_id == "neg" and refused.value.error.input == "text"


def test_sdxl_embedding_gives_each_encoder_its_own_vectors(sdxl_models_dir, tmp_path):  # noqa: F811
    settings = settings_with(sdxl_models_dir / "checkpoints", tmp_path, BASE)
    executor = Executor(settings)
    executor.run(sdxl_txt2img(steps=1))
    _, clip, _ = loaded(executor, "sdxl")
    widths = [e.get_input_embeddings().embedding_dim for e in clip.encoders]
    assert widths[0] != widths[1]
    gen = torch.Generator().manual_seed(4)
    vectors = {"clip_l": torch.randn(1, widths[0], generator=gen), "clip_g": torch.randn(1, widths[1], generator=gen)}
    save_file(vectors, str(settings.models / "embeddings" / "xlstyle.safetensors"))
    found = Embeddings(folders.list_embeddings(settings))
    ours = encode(clip, "a embedding:xlstyle circle", found)
    for k, (tokenizer, encoder, key) in enumerate(zip(clip.tokenizers, clip.encoders, ("clip_l", "clip_g"))):
        # Reference: the encoder's own token table with the vector in place of a new token's row.
        # ("dog": a one-token word that is neither padding nor in the prompt)
        ids = tokenizer("a dog circle", padding="max_length", max_length=77, return_tensors="pt").input_ids
        (word,) = tokenizer("dog", add_special_tokens=False).input_ids
        table = encoder.get_input_embeddings()
        saved = table.weight[word].clone()
        with torch.no_grad():
            table.weight[word] = vectors[key][0]
            expected = encoder(ids, output_hidden_states=True).hidden_states[-2]
            table.weight[word] = saved
        part = ours.embeds[..., :widths[0]] if k == 0 else ours.embeds[..., widths[0]:]
        torch.testing.assert_close(part, expected)


class RunsCode:  # a pickle that would run a command when loaded with plain torch.load
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pt_and_bin_embeddings_load_as_diffusers_does_and_pickled_code_is_refused(models_dir, tmp_path):
    settings, executor, clip, width = tiny_sd15_loaded(models_dir, tmp_path)
    folder = settings.models / "embeddings"
    vectors = torch.randn(2, width, generator=torch.Generator().manual_seed(5))
    # A1111's .pt: the vectors in string_to_param beside names and counts; diffusers' .bin: token -> vector
    torch.save({"string_to_token": {"*": 265}, "string_to_param": {"*": vectors}, "name": "a1111", "step": 500,
                "sd_checkpoint_name": "any"}, folder / "a1111.pt")
    torch.save({"<bin>": vectors[0]}, folder / "onevec.bin")
    found = Embeddings(folders.list_embeddings(settings))
    pipe = diffusers.StableDiffusionPipeline.from_pretrained(models_dir / "checkpoints" / "tiny-sd15",
                                                             safety_checker=None, requires_safety_checker=False)
    pipe.load_textual_inversion(str(folder / "a1111.pt"), token="<a1111>")
    pipe.load_textual_inversion(str(folder / "onevec.bin"))
    for ours, theirs in [("a photo of embedding:a1111 circle", "a photo of <a1111> circle"),
                         ("a photo of embedding:onevec.bin circle", "a photo of <bin> circle")]:
        torch.testing.assert_close(encode(clip, ours, found).embeds, pipe.encode_prompt(theirs, "cpu", 1, False)[0],
                                   atol=1e-6, rtol=1e-6)

    marker = tmp_path / "code-ran"
    torch.save({"string_to_param": {"*": RunsCode(marker)}}, folder / "evil.pt")
    with pytest.raises(NodeError) as refused:
        executor.run(txt2img(negative="embedding:evil", steps=3))
    assert refused.value.error.node_id == "neg" and refused.value.error.input == "text"
    assert "evil" in refused.value.error.message and "more than tensors" in refused.value.error.message
    assert not marker.exists()
