"""How much GPU memory a train job needs per GPU, and whether the GPUs it gets have it (`premem plan` prints the
estimate of each (model, dataset) pair; `premem apply` refuses a job that cannot fit before anything runs).

The estimate, in bytes per GPU (P: the model's parameters; N: training.shards; b: bytes of a value of the model's
dtype, 2 for bfloat16/float16, 4 for float32; w: bytes of a stored weight, 4 under mixed precision and b under
pure):

    states      full finetuning: 16 P / N under mixed precision or for a float32 model (float32 weights 4,
                gradients 4, AdamW's two moments 8), 4 b P / N under pure (weights b, gradients b, moments 2 b);
                LoRA: b P for the frozen base (never sharded: LoRA runs on one device) + 16 A for the A adapter
                parameters (float32 weights, gradients and moments)
    casts       mixed precision, full finetuning: 2 P, the 16-bit copies of the weights autocast makes in the
                forward pass and autograd keeps for the backward pass (not sharded: every layer's copy lives
                until its backward pass); 0 otherwise
    gathered    FSDP (N > 1): 3 w P_layer, one decoder layer gathered in full, the next one prefetched, and one
                layer's full gradient before it is reduced; 0 for N = 1
    activations m T L a (16 h + 4 i) + m T V (a + 8): premem does NOT use gradient checkpointing, so every
                layer's saved tensors of a micro-batch of m sequences of T tokens stay until its backward pass:
                a (16 h + 4 i) bytes a token and layer (h hidden width, i MLP width, a = 2 bytes for 16-bit
                passes, 4 for float32 ones: the norms' float32 copies, attention's inputs and output, the
                MLP's four i-wide tensors), and the logits with their float32 copy and gradient (V vocabulary).
                m = training.micro_batch_size (else the batch), per process under FSDP (each takes every N-th
                example: micro_batch_size, else ceil(batch_size / N)).
    overhead    2 GiB: the CUDA context, cuBLAS workspaces and the allocator's fragmentation.

T is the longest padded micro-batch: the model's `max_length` when the spec gives it (or a built-in model's
size.max_length), else 4 x the dataset's mean example length (premem.cost.datasets' lengths; an assumption, stated in
the output), at most the model's max_position_embeddings.

The architecture (P, h, i, L, V) comes from a local model folder's config.json (P counted from its safetensors
headers when it has them), for a hub id from config.json in the local Hugging Face cache (never downloaded), else
from a small table of the models the shipped specs name, else it is unknown and the estimate says so.
"""
from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only
    from premem.plan.build import Plan
    from premem.spec.schema import Spec

GIB = 2**30
OVERHEAD_GIB = 2.0
ASSUMED_GPU_GIB = 80.0  # when neither the spec nor a local GPU says (an A100/H100 80 GB)
LONG_EXAMPLE_FACTOR = 4  # the longest example of a micro-batch, as a multiple of the mean (an assumption)


@dataclass(frozen=True)
class Architecture:
    """The sizes of a decoder-only transformer the estimate needs."""

    params: int  # all parameters
    hidden: int
    layers: int
    vocab: int
    intermediate: int  # MLP width
    q_dim: int  # heads x head_dim (the query projection's width)
    kv_dim: int  # key/value heads x head_dim
    max_positions: int | None
    source: str  # where the numbers came from

    @property
    def layer_params(self) -> int:
        """Parameters of one decoder layer (attention and a gated MLP; norms left out)."""
        h = self.hidden
        return h * self.q_dim * 2 + 2 * h * self.kv_dim + 3 * h * self.intermediate


# Configs of the models the shipped specs name (their config.json on the Hub), for planning offline.
KNOWN_CONFIGS: dict[str, dict] = {
    "meta-llama/Meta-Llama-3-8B": {"hidden_size": 4096, "num_hidden_layers": 32, "intermediate_size": 14336,
                                   "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
                                   "tie_word_embeddings": False, "max_position_embeddings": 8192},
    "google/gemma-2-9b": {"hidden_size": 3584, "num_hidden_layers": 42, "intermediate_size": 14336,
                          "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 256, "vocab_size": 256000,
                          "tie_word_embeddings": True, "max_position_embeddings": 8192, "model_type": "gemma2"},
    "deepseek-ai/deepseek-math-7b-base": {"hidden_size": 4096, "num_hidden_layers": 30, "intermediate_size": 11008,
                                          "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 102400,
                                          "tie_word_embeddings": False, "max_position_embeddings": 4096},
}
KNOWN_CONFIGS["meta-llama/Meta-Llama-3-8B-Instruct"] = KNOWN_CONFIGS["meta-llama/Meta-Llama-3-8B"]
KNOWN_CONFIGS["deepseek-ai/deepseek-math-7b-instruct"] = KNOWN_CONFIGS["deepseek-ai/deepseek-math-7b-base"]


def from_config(config: dict, source: str, params: int | None = None) -> Architecture | None:
    """The Architecture of a Hugging Face config.json's values (a Llama-style decoder: hidden_size,
    num_hidden_layers, intermediate_size, num_attention_heads, vocab_size); None when it lacks one of them.
    `params`: the exact parameter count when known (else counted from the config: embeddings, an untied output
    layer, attention, a gated MLP and the norms)."""
    try:
        h, layers, i = int(config["hidden_size"]), int(config["num_hidden_layers"]), int(config["intermediate_size"])
        heads, vocab = int(config["num_attention_heads"]), int(config["vocab_size"])
    except (KeyError, TypeError, ValueError):
        return None
    head_dim = int(config.get("head_dim") or h // heads)
    kv_dim = int(config.get("num_key_value_heads") or heads) * head_dim
    q_dim = heads * head_dim
    if params is None:
        norms = (4 if config.get("model_type") == "gemma2" else 2) * h
        per_layer = h * q_dim * 2 + 2 * h * kv_dim + 3 * h * i + norms
        tied = config.get("tie_word_embeddings", True)
        params = vocab * h * (1 if tied else 2) + layers * per_layer + h
    return Architecture(params, h, layers, vocab, i, q_dim, kv_dim, config.get("max_position_embeddings"), source)


def safetensors_params(folder: Path) -> int | None:
    """Parameters stored in the safetensors files of `folder`, read from their headers only (no weights read);
    None when it has none or one cannot be read."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    total = 0
    try:
        for f in files:
            with open(f, "rb") as fh:
                n = struct.unpack("<Q", fh.read(8))[0]
                header = json.loads(fh.read(n))
            total += sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")
    except (OSError, ValueError, KeyError, struct.error):
        return None
    return total


def _cached_config(hub_id: str, revision: str | None) -> Path | None:
    """config.json of a hub model in the local Hugging Face cache, if there (nothing is downloaded)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        path = try_to_load_from_cache(hub_id, "config.json", revision=revision)
    except Exception:  # noqa: BLE001 - an odd id or a damaged cache: the architecture is then looked up elsewhere
        return None
    return Path(path) if isinstance(path, str) and os.path.isfile(path) else None


def architecture(model) -> Architecture | None:
    """The Architecture of a spec model (spec.ModelSpec); None when it is unknown (a hub model neither in the
    local cache nor in KNOWN_CONFIGS, or a config that is not a Llama-style decoder)."""
    if model.builtin is not None:
        from premem.data.tokenizer import WordTokenizer

        s = model.size
        vocab = WordTokenizer.for_arithmetic_task().vocab_size
        config = {"hidden_size": s.hidden, "num_hidden_layers": s.layers, "intermediate_size": s.mlp,
                  "num_attention_heads": s.heads, "vocab_size": vocab, "tie_word_embeddings": True,
                  "max_position_embeddings": s.max_length}
        return from_config(config, "built-in model size")
    from premem.engine.hf import is_local

    if is_local(model.hf):
        folder = Path(model.hf)
        try:
            config = json.loads((folder / "config.json").read_text())
        except (OSError, ValueError):
            return None
        return from_config(config, f"{folder / 'config.json'}", safetensors_params(folder))
    cached = _cached_config(model.hf, model.revision)
    if cached is not None:
        try:
            return from_config(json.loads(cached.read_text()), "config.json in the local Hugging Face cache")
        except (OSError, ValueError):
            pass
    if model.hf in KNOWN_CONFIGS:
        return from_config(KNOWN_CONFIGS[model.hf], "premem's table of the shipped specs' models")
    return None


@dataclass
class MemoryEstimate:
    """A train job's peak GPU memory per GPU (GiB; None when the architecture is unknown), its parts (GiB), the
    sequence length it assumes and what it assumed."""

    model: str
    dataset: str
    gib: float | None
    parts: dict[str, float] = field(default_factory=dict)
    seq_len: int | None = None
    shards: int = 1
    assumptions: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """Plain data for `premem plan --json`."""
        return {"model": self.model, "dataset": self.dataset, "gib_per_gpu": _round(self.gib),
                "parts_gib": {k: _round(v) for k, v in self.parts.items()}, "sequence_length": self.seq_len,
                "shards": self.shards, "assumptions": self.assumptions}


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def adapter_params(arch: Architecture, lora: dict) -> int:
    """Parameters of LoRA adapters of rank r on the decoder layers' projections (`all-linear`: all seven of a
    Llama-style layer; or the ones named among q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)."""
    h, i, q, kv = arch.hidden, arch.intermediate, arch.q_dim, arch.kv_dim
    shapes = {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h), "gate_proj": (h, i),
              "up_proj": (h, i), "down_proj": (i, h)}
    names = shapes if lora.get("target_modules", "all-linear") == "all-linear" else lora["target_modules"]
    return arch.layers * lora.get("r", 16) * sum(sum(shapes[n]) for n in names if n in shapes)


def sequence_length(model, ds, arch: Architecture) -> tuple[int, str | None]:
    """(T, the assumption made or None): the longest padded sequence a micro-batch holds, in tokens."""
    if model.builtin is not None:
        return model.size.max_length, None
    if model.max_length is not None:
        return model.max_length, None
    from premem.cost.datasets import TOKENS_PER_WORD, dataset_stats
    from premem.cost.throughputs import CostError

    try:
        st = dataset_stats(ds, None, TOKENS_PER_WORD)
        mean = st.prompt_tokens + st.target_tokens
        t, why = int(math.ceil(LONG_EXAMPLE_FACTOR * mean)), f"{LONG_EXAMPLE_FACTOR} x the mean example, {mean:.0f}"
    except CostError:
        t, why = 1024, "no example lengths known for this dataset"
    if arch.max_positions:
        t = min(t, int(arch.max_positions))
    return t, f"{t}-token sequences assumed: {why}; a model's max_length bounds them"


def train_memory(model, ds, training) -> MemoryEstimate:
    """The peak GPU memory per GPU of a train job of `model` on `ds` (spec.ModelSpec, spec.DatasetSpec) with the
    recipe `training` (spec.Training, overrides resolved); see the module's docstring for the formula."""
    arch = architecture(model)
    shards = training.shards
    est = MemoryEstimate(model.name, ds.name, None, shards=shards)
    if arch is None:
        est.assumptions.append(f"architecture of {model.hf} unknown (not in the local Hugging Face cache nor in "
                               "premem's table): no estimate")
        return est
    p, b = arch.params, 4 if model.dtype == "float32" else 2
    mixed = model.dtype != "float32" and training.precision == "mixed"
    w = 4 if (mixed or model.dtype == "float32") else b
    parts: dict[str, float] = {}
    if training.lora is not None:
        a = adapter_params(arch, training.lora.model_dump())
        parts["weights"] = b * p + 4 * a
        parts["gradients"] = 4 * a
        parts["optimizer"] = 8 * a
    else:
        parts["weights"] = w * p / shards
        parts["gradients"] = w * p / shards
        parts["optimizer"] = 2 * w * p / shards
        if mixed:
            parts["autocast copies"] = 2 * p
        if shards > 1:
            parts["gathered layers"] = 3 * w * arch.layer_params
    t, assumed = sequence_length(model, ds, arch)
    if assumed:
        est.assumptions.append(assumed)
    micro = training.micro_batch_size or (math.ceil(training.batch_size / shards) if shards > 1
                                          else training.batch_size)
    act = 2 if model.dtype != "float32" else 4
    tokens = micro * t
    parts["activations"] = tokens * arch.layers * act * (16 * arch.hidden + 4 * arch.intermediate)
    parts["logits"] = tokens * arch.vocab * (act + 8)
    parts["overhead"] = OVERHEAD_GIB * GIB
    est.parts = {k: v / GIB for k, v in parts.items()}
    est.gib = sum(est.parts.values())
    est.seq_len = t
    est.assumptions.append(f"{p / 1e9:.2f}B parameters" if p >= 1e8 else f"{p:,} parameters")
    est.assumptions.append(f"architecture: {arch.source}")
    return est


def plan_memory(plan: Plan) -> list[MemoryEstimate]:
    """The estimate of each (model, dataset) pair that has train jobs in `plan` (grid runs, then curation's)."""
    spec = plan.spec
    pairs = list(dict.fromkeys((r.model, r.dataset) for r in plan.runs))
    if spec.curation is not None:
        pairs.append(spec.curation_pair())
    out = []
    for m, d in dict.fromkeys(pairs):
        training = spec.training.for_run(m, d)
        if spec.curation is not None and (m, d) == spec.curation_pair() and spec.curation.batch_size is not None \
                and (m, d) not in {(r.model, r.dataset) for r in plan.runs}:
            training = training.model_copy(update={"batch_size": spec.curation.batch_size})
        out.append(train_memory(spec.model(m), spec.dataset(d), training))
    return out


def uses_gpu(spec: Spec) -> bool:
    """Whether train jobs run on a GPU (device cuda, or auto with GPUs asked for)."""
    return spec.device == "cuda" or (spec.device == "auto" and spec.resources.train.gpus > 0)


def gpu_memory(spec: Spec) -> tuple[float, str]:
    """(GiB of one GPU a train job gets, where that figure comes from): resources.train.gpu_memory_gib, else the
    local CUDA device's, else ASSUMED_GPU_GIB (said so)."""
    given = spec.resources.train.gpu_memory_gib
    if given is not None:
        return given, "resources.train.gpu_memory_gib"
    try:
        import torch

        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            return props.total_memory / GIB, f"this machine's {props.name}"
    except Exception:  # noqa: BLE001 - no usable CUDA here: assume
        pass
    return ASSUMED_GPU_GIB, (f"ASSUMED: no GPU here and resources.train.gpu_memory_gib unset; set it to your GPUs' "
                             "memory")


def memory_lines(plan: Plan) -> list[str]:
    """The lines `premem plan` prints: each pair's train-job memory per GPU against the GPU memory it gets."""
    spec = plan.spec
    ests = plan_memory(plan)
    if not ests:
        return []
    if not uses_gpu(spec):
        head = "Memory of a train job (on the CPU: no GPU check):"
    else:
        gib, src = gpu_memory(spec)
        head = f"GPU memory per GPU of a train job (GPUs of {gib:.0f} GiB: {src}):"
    lines = [head]
    for e in ests:
        if e.gib is None:
            lines.append(f"  {e.model} on {e.dataset}: unknown ({'; '.join(e.assumptions)})")
            continue
        shards = f", {e.shards} shards" if e.shards > 1 else ""
        parts = ", ".join(f"{k} {v:.1f}" for k, v in e.parts.items())
        lines.append(f"  {e.model} on {e.dataset}: about {e.gib:.1f} GiB{shards} ({parts}; {'; '.join(e.assumptions)})")
    return lines


def memory_problem(plan: Plan, job_ids: set[str] | None = None) -> str | None:
    """One line refusing the plan when a train job (of `job_ids`, default all) needs more GPU memory than its GPU
    has; None when every one fits, the architecture is unknown, or the jobs run on the CPU."""
    spec = plan.spec
    if not uses_gpu(spec):
        return None
    runs = plan.runs_by_name()
    wanted = set()
    for j in plan.jobs:
        if j.kind == "train" and (job_ids is None or j.id in job_ids):
            run = runs.get(j.run)
            wanted.add((run.model, run.dataset) if run is not None else spec.curation_pair())
    gib, src = gpu_memory(spec)
    for e in plan_memory(plan):
        if (e.model, e.dataset) in wanted and e.gib is not None and e.gib > gib:
            return (f"train jobs of {e.model} on {e.dataset} need about {e.gib:.1f} GiB per GPU, more than the "
                    f"{gib:.4g} GiB of their GPUs ({src}): shard the model over more GPUs (training.shards with as "
                    "many resources.train.gpus), train LoRA adapters (training.lora), or lower "
                    "training.micro_batch_size")
    return None
