"""Hugging Face tokenizers as premem codecs, and the identity of a local model folder.

premem's code (training, sampling, target scoring) talks to a tokenizer through `models.TextCodec`: `encode`
(no special tokens added), `decode`, and the `pad_id`, `eos_id` and `bos_id` it needs. `HFCodec` gives any
transformers tokenizer that shape, so a Hub model takes exactly the path of the built-in model and its word
tokenizer.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from premem.data.loaders import file_sha256


def prepare_tokenizer(tokenizer) -> bool:
    """Give `tokenizer` a pad token when it has none; True when that added a new token to its vocabulary.

    The pad token is only ever a filler (training masks it out of the loss and never lets a real token see it;
    sampling masks it out of attention), so the eos token serves when there is one, which adds nothing and
    needs no new embedding row. Only a tokenizer without eos gets a new `<pad>` token, and then (and only then)
    the model's embeddings must grow (`fit_embeddings`).
    """
    if tokenizer.pad_token_id is not None:
        return False
    if tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
        return False
    tokenizer.add_special_tokens({"pad_token": "<pad>"})
    return True


def fit_embeddings(model, tokenizer) -> bool:
    """Grow the model's token embeddings when the tokenizer has more tokens than the model has rows (a pad
    token added by `prepare_tokenizer`); True when it resized. Models whose embedding table is padded beyond
    the tokenizer (common) are left alone. transformers initialises new rows at the mean of the old ones, so
    the same base model grows the same rows every time."""
    rows = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) <= rows:
        return False
    model.resize_token_embeddings(len(tokenizer))
    return True


class HFCodec:
    """A transformers tokenizer with premem's codec interface (see `premem.engine.models.TextCodec`).

    `bos_id` is the token the tokenizer itself puts before a text (Llama, Gemma, DeepSeek), None when it adds
    none (GPT-2 style), so premem prefixes sequences exactly as the model saw them in pretraining.
    Sub-word tokenizers may split a string differently depending on what precedes it, so the sampler must
    recognise the stop string in decoded text rather than as a fixed run of token ids (`stop_by_text`).
    """

    stop_by_text = True

    def __init__(self, tokenizer):
        prepare_tokenizer(tokenizer)
        self.tokenizer = tokenizer
        self.pad_id: int = tokenizer.pad_token_id
        self.eos_id: int | None = tokenizer.eos_token_id
        self.bos_id: int | None = _added_bos(tokenizer)
        self._pieces: dict[int, str] = {}

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    def __len__(self) -> int:
        return len(self.tokenizer)

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, without special tokens (callers add bos themselves)."""
        return self.tokenizer.encode(text, add_special_tokens=False)

    def decode(self, ids) -> str:
        """Text of `ids` (any iterable of integers), special tokens (pad, eos, bos) skipped, spacing as the
        tokenizer encoded it (no clean-up of spaces before punctuation)."""
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=True,
                                     clean_up_tokenization_spaces=False)

    def piece(self, token_id: int) -> str:
        """The text of one token alone (cached): lets the sampler skip the stop check after tokens that cannot
        end the stop string."""
        p = self._pieces.get(token_id)
        if p is None:
            p = self._pieces[token_id] = self.tokenizer.decode([token_id], skip_special_tokens=False,
                                                               clean_up_tokenization_spaces=False)
        return p

    def save_pretrained(self, folder: str | Path) -> None:
        self.tokenizer.save_pretrained(folder)

    def __repr__(self) -> str:
        return f"HFCodec({type(self.tokenizer).__name__}, vocab_size={len(self.tokenizer)})"


def _added_bos(tokenizer) -> int | None:
    probe = "a"
    with_special = tokenizer.encode(probe, add_special_tokens=True)
    plain = tokenizer.encode(probe, add_special_tokens=False)
    if tokenizer.bos_token_id is not None and len(with_special) > len(plain) and with_special[0] == tokenizer.bos_token_id:
        return tokenizer.bos_token_id
    return None


def load_tokenizer(source: str | Path, revision: str | None = None, trust_remote_code: bool = False):
    """The transformers tokenizer of a hub id or folder (AutoTokenizer.from_pretrained), pad token prepared."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(source), revision=revision, trust_remote_code=trust_remote_code)
    prepare_tokenizer(tok)
    return tok


def is_local(source: str) -> bool:
    """Whether an `hf` value (as the spec stores it: absolute for folders) names a local folder."""
    return os.path.isabs(source)


_WHOLE = 64 << 20  # files up to this size are hashed whole; larger ones (weights) by size, head and tail
_EDGE = 1 << 20


def _file_digest(path: Path) -> str:
    size = path.stat().st_size
    if size <= _WHOLE:
        return file_sha256(str(path))
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(_EDGE))
        f.seek(size - _EDGE)
        h.update(f.read(_EDGE))
    return h.hexdigest()


def model_fingerprint(source: str) -> dict:
    """What a job's identity needs beyond the `hf` value: for a local folder, a digest of its files (so
    replacing the model in place reruns the jobs that read it); {} for a hub id (pin its `revision` to make
    it reproducible). Files up to 64 MiB (config, tokenizer, small models) count by their whole content;
    larger weight files by their size and first and last MiB, so planning a study of 8B models does not read
    16 GB each time."""
    if not is_local(source) or not os.path.isdir(source):
        return {}
    h = hashlib.sha256()
    root = Path(source)
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
        h.update(str(path.relative_to(root)).encode() + b"\0" + _file_digest(path).encode() + b"\n")
    return {"model_sha256": h.hexdigest()}
