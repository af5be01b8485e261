"""The torch code the jobs call: models, training, sampling and scoring.

- `models` (built-in tiny models, loading and saving), `hf` (hub and local transformers models), `lora`;
- `train`: the recipe, an epoch of AdamW with warmup and cosine decay, packing;
- `sampling`: the batched KV-cache sampler and target scoring; `vllm_sampler`: the same on vLLM (GPU only);
- `evaluate`: a checkpoint's per-example accuracy and target perplexity;
- `hardware`: dtype choices that depend on the CPU or GPU (no torch).
"""
