"""A tiny Llama-architecture causal LM and a real Hugging Face tokenizer, written to a folder with
`save_pretrained`, so tests load them through the same `from_pretrained` path a Hub id takes (nothing
downloads).

The tokenizer is a byte-level BPE (the `tokenizers` library) trained on the text it is given, wrapped as a
`PreTrainedTokenizerFast` that adds a bos token, like Llama's. It has no pad token, as many base models do.
"""
from __future__ import annotations

import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture_texts() -> list[str]:
    """Questions and answers of the GSM8K fixtures, plus premem's prompt/target format around them."""
    out = []
    for name in ("gsm8k_train.jsonl", "gsm8k_test.jsonl"):
        for line in (FIXTURES / name).read_text().splitlines():
            row = json.loads(line)
            out.append(row["question"] + "\nAnswer: " + row["answer"] + "\nDone.")
    return out


def make_tokenizer(texts: list[str], vocab_size: int = 600, pad: bool = False):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<s>", "</s>"] + (["<pad>"] if pad else [])
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", bos)])
    kwargs = {"pad_token": "<pad>"} if pad else {}
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", **kwargs)


def make_tiny_hf(folder: Path, texts: list[str] | None = None, seed: int = 0, hidden: int = 32, layers: int = 2,
                 max_length: int = 512):
    """Write a freshly initialised tiny LlamaForCausalLM and its tokenizer into `folder`; return the folder."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = make_tokenizer(texts if texts is not None else fixture_texts())
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=2,
                         max_position_embeddings=max_length, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id, tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    folder = Path(folder)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
