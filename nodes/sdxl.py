"""SDXL text encoding: both text encoders, as `StableDiffusionXLPipeline.encode_prompt` does.

The base has two encoders (CLIP ViT-L, then OpenCLIP ViT-bigG); the refiner only the second.
Each encodes its prompt padded to its tokenizer's length; the penultimate hidden states are
concatenated on the feature axis, and the pooled (projected) output of the last encoder becomes
SDXL's `text_embeds`.

An empty prompt from a checkpoint that asks for it (`force_zeros_for_empty_prompt`, the base) is
marked `empty_prompt`: used as the negative, the sampler replaces it with zeros, which is what
diffusers does when no negative prompt is given.
"""
from __future__ import annotations

from latentgraph.graph.errors import InputError
from latentgraph.lazy import torch
from latentgraph.nodes import folders, prompt_weights
from latentgraph.nodes.embeddings import Embeddings, token_embedding
from latentgraph.nodes.lora import clip_adapters
from latentgraph.nodes.sampling import SDXL_FAMILIES
from latentgraph.nodes.spec import CLIP, CONDITIONING, FLOAT, INT, STRING, Input, Output, node
from latentgraph.nodes.values import Conditioning, TextEncoder

MAX_RESOLUTION = 16384


def _hidden_and_pooled(tokenizer, encoder, text: str, clip_skip: int = 0, windows: int = 1, vectors=None):
    def run(input_ids, mask):
        out = encoder(input_ids, output_hidden_states=True)
        # CLIPTextModelWithProjection returns the projected pooled output first; CLIPTextModel the
        # last hidden state (3-d), whose pooled output SDXL does not use.
        pooled = out[0] if out[0].ndim == 2 else None
        return out.hidden_states[-(clip_skip + 2)], pooled  # the penultimate layer, as diffusers' clip_skip
    return prompt_weights.encode(tokenizer, text, run, encoder.device, at_least=windows, vectors=vectors,
                                 token_embedding=token_embedding(encoder))



def encode_texts(clip: TextEncoder, texts: list[str], time_ids=None, aesthetic_score=None,
                 found: Embeddings | None = None) -> Conditioning:
    """Encode one text per encoder of an SDXL CLIP (diffusers' prompt, prompt_2 order); `found`: the
    embedding files `embedding:name` may name."""
    if clip.family not in SDXL_FAMILIES:
        raise InputError("clip", f"this node needs an SDXL checkpoint's CLIP, got a {clip.family} one")
    hidden, pooled = [], None
    # The encoders' states are joined feature-wise, so the shorter prompt is padded with empty windows.
    found = found or Embeddings()
    windows = max(prompt_weights.count(tok, text, found.lookup(enc))
                  for tok, enc, text in zip(clip.tokenizers, clip.encoders, texts))
    with clip_adapters(clip):
        for tokenizer, encoder, text in zip(clip.tokenizers, clip.encoders, texts):
            states, pooled = _hidden_and_pooled(tokenizer, encoder, text, clip.clip_skip, windows,
                                                found.lookup(encoder))
            hidden.append(states)
    last = clip.encoders[-1]
    embeds = torch.cat(hidden, dim=-1).to(dtype=last.dtype, device=last.device)
    empty = clip.force_zeros_for_empty_prompt and all(t == "" for t in texts)
    return Conditioning(embeds=embeds, pooled=pooled, time_ids=time_ids, aesthetic_score=aesthetic_score,
                        empty_prompt=empty)


def encode(clip: TextEncoder, text: str, found: Embeddings | None = None) -> Conditioning:
    """The same prompt for every encoder; size conditioning follows the latent being sampled."""
    return encode_texts(clip, [text] * len(clip.encoders), found=found)


def size_input(name: str, default: int, tooltip: str) -> Input:
    return Input(name, INT, default=default, min=0, max=MAX_RESOLUTION, tooltip=tooltip)


@node("CLIPTextEncodeSDXL", category="advanced/conditioning",
      description="Encodes SDXL prompts with full control of the size conditioning: text_g goes to the OpenCLIP "
                  "bigG encoder, text_l to CLIP ViT-L (diffusers' prompt_2 and prompt).",
      inputs=[Input("clip", CLIP, tooltip="An SDXL base checkpoint's text encoders."),
              size_input("width", 1024, "Original image width the model is told about (original_size)."),
              size_input("height", 1024, "Original image height (original_size)."),
              size_input("crop_w", 0, "Left crop coordinate (crops_coords_top_left)."),
              size_input("crop_h", 0, "Top crop coordinate (crops_coords_top_left)."),
              size_input("target_width", 1024, "Target width (target_size)."),
              size_input("target_height", 1024, "Target height (target_size)."),
              Input("text_g", STRING, default="", multiline=True, tooltip="Prompt for the OpenCLIP bigG encoder "
                    "((words:1.3) weights and long prompts as in CLIPTextEncode)."),
              Input("text_l", STRING, default="", multiline=True, tooltip="Prompt for the CLIP ViT-L encoder.")],
      outputs=[Output("CONDITIONING", CONDITIONING)])
def clip_text_encode_sdxl(ctx, clip: TextEncoder, width: int, height: int, crop_w: int, crop_h: int,
                          target_width: int, target_height: int, text_g: str, text_l: str):
    # time ids as diffusers builds them: original (h, w), crop (top, left), target (h, w).
    time_ids = (height, width, crop_h, crop_w, target_height, target_width)
    texts = [text_l, text_g] if len(clip.encoders) == 2 else [text_g]
    with torch.inference_mode():
        found = Embeddings(folders.list_embeddings(ctx.settings), "text_g")
        return (encode_texts(clip, texts, time_ids=time_ids, found=found),)


@node("CLIPTextEncodeSDXLRefiner", category="advanced/conditioning",
      description="Encodes a prompt for the SDXL refiner, with its aesthetic score and original size "
                  "conditioning (diffusers: aesthetic_score 6.0, negative_aesthetic_score 2.5).",
      inputs=[Input("ascore", FLOAT, default=6.0, min=0.0, max=1000.0, step=0.01,
                    tooltip="Aesthetic score: about 6 for the positive prompt, 2.5 for the negative."),
              size_input("width", 1024, "Original image width (original_size)."),
              size_input("height", 1024, "Original image height (original_size)."),
              Input("text", STRING, default="", multiline=True,
                    tooltip="The prompt ((words:1.3) weights and long prompts as in CLIPTextEncode)."),
              Input("clip", CLIP, tooltip="The SDXL refiner's text encoder.")],
      outputs=[Output("CONDITIONING", CONDITIONING)])
def clip_text_encode_sdxl_refiner(ctx, ascore: float, width: int, height: int, text: str, clip: TextEncoder):
    time_ids = (height, width, 0, 0, ascore) if clip.family == "sdxl_refiner" else (height, width, 0, 0, height, width)
    with torch.inference_mode():
        return (encode_texts(clip, [text] * len(clip.encoders), time_ids=time_ids, aesthetic_score=ascore,
                             found=Embeddings(folders.list_embeddings(ctx.settings))),)
