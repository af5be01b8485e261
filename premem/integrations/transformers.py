"""PreMemAcc while you train: a `transformers.TrainerCallback`.

At the end of every epoch (or every N optimizer steps) `PreMemAccCallback` evaluates the model being trained
on a fixed, seeded subset of train examples (and, if given, of test examples) exactly as `premem apply`
evaluates a checkpoint: `premem.engine.evaluate.evaluate_checkpoint` scores each train target's perplexity, draws k
samples per prompt with `premem.engine.sampling.TransformersSampler` and grades them with premem.data.answers; the
run's PreMemAcc so far comes from `premem.metrics.premem`. It then

- logs train accuracy, test accuracy, PreMemAcc and the fraction of train examples memorized (at one p or a
  grid of p) through `Trainer.log`, so `report_to` carries them to TensorBoard, W&B, MLflow, ...;
- writes every per-example result as premem's long table (README, "Bring your own evaluations"), so
  `premem analyze TABLE` gives the full report (several runs may share one table file: each run replaces
  only its own rows).

Training is not changed: the evaluation runs under `torch.no_grad` in eval mode, every module's train/eval
flag is restored afterwards, and the RNG states (python `random`, numpy, torch CPU and CUDA) are saved before
and restored after, so data order and dropout are those of a run without the callback (tested: identical
losses, with gradient accumulation and with TRL's SFTTrainer too).

Cost (2026-12-01, the 2-core AMD EPYC of premem's CI: avx2 fma f16c, no avx512, no amx; machine shared with a
benchmark, load average about 4): one evaluation of the tests' tiny Llama (hidden 32, 2 layers, 600-token BPE
vocabulary, untrained, so every sample runs to max_new_tokens) on 32 train + 32 test prompts x 4 samples took
1.7 s at max_new_tokens 64 and 8.2 s at 256 with one torch thread (median of 3); with two threads on the busy
machine, 29 s and 140 s (the threads spin-wait on each other: `torch.set_num_threads(1)` when the CPU is
shared). Sampling dominates; it grows with prompts x samples x max_new_tokens. examples/README.md has the
numbers of the example script.

Limits: one process (with DDP every rank but rank 0 skips the evaluation and waits; FSDP and DeepSpeed
ZeRO-3 shard the weights, which a rank-0-only forward cannot use, and are refused). Prompts and targets are
premem's format (premem.data.format): prompt = question + "\\nAnswer:", target = " " + solution + "\\nDone.".
"""
from __future__ import annotations

import copy
import math
import random
import time
import warnings
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from transformers import TrainerCallback

from premem.data.answers import extract_answer
from premem.data.format import ANSWER_CUE, STOP
from premem.data.loaders import TextExample, load_splits, subset_indices
from premem.engine.evaluate import evaluate_checkpoint
from premem.engine.models import LoadedModel
from premem.engine.sampling import SamplingParams
from premem.metrics.premem import not_memorized, premem_acc_grid

__all__ = ["PreMemAccCallback", "load_examples", "answer_format_of", "Grader"]

# grader(completion, gold answer) -> True (correct), False (wrong) or None (no final answer: unparseable)
Grader = Callable[[str, str], "bool | None"]

# dataset name -> how premem reads and compares its final answers (premem.data.answers.ANSWER_FORMATS)
FORMAT_OF = {"gsm8k": "gsm8k", "arithmetic": "gsm8k", "math": "boxed", "boxed": "boxed"}


def answer_format_of(grader: str) -> str:
    """premem's answer format ('gsm8k' or 'boxed') for a dataset name: gsm8k, arithmetic, math (or a format
    name itself). Raises ValueError for an unknown name."""
    try:
        return FORMAT_OF[grader.lower()]
    except KeyError:
        raise ValueError(f"unknown grader {grader!r}: give one of {', '.join(FORMAT_OF)} or a function "
                         "grader(completion, gold) -> True / False / None (None: no final answer)") from None


# ------------------------------------------------------------------------------------------------ examples


def load_examples(source, split: str = "train", answer_format: str | None = None) -> list[TextExample]:
    """Examples as premem's `TextExample`s (id, question, solution, answer, difficulty, answer_format).

    `source`: None (no examples); a JSONL/JSON/Parquet file path (GSM8K-style columns: `question`, and the
    solution in `answer`, read by premem's `jsonl` loader; ids `<split>-00000`, ...); a
    `premem.spec.schema.DatasetSpec` (its `split` split through premem's dataset registry); or a sequence of
    examples: objects with id, question, solution, answer (premem's own), or dicts with `question` and
    `solution` (or premem-format `prompt` and `target`/`completion`), an optional `answer` (else read from the
    solution) and optional `id` (else `<split>-<index>`). `answer_format` (gsm8k | boxed) overrides the
    examples' own; None keeps it (gsm8k where they have none). Raises ValueError on an example it cannot use.
    """
    if source is None:
        return []
    if isinstance(source, (str, Path)):
        from premem.spec.schema import DatasetSpec

        # premem's jsonl loader reads two files; the one file serves as both, and `split` picks the ids' prefix
        jsonl = {"train_file": str(source), "test_file": str(source)}
        if answer_format is not None:
            jsonl["answer_format"] = answer_format
        source = DatasetSpec(name=Path(source).stem, jsonl=jsonl)
    if _is_dataset_spec(source):
        source = getattr(load_splits(source), split)
    return [_as_example(ex, i, split, answer_format) for i, ex in enumerate(source)]


def _is_dataset_spec(obj) -> bool:
    from premem.spec.schema import DatasetSpec

    return isinstance(obj, DatasetSpec)


def _as_example(ex, i: int, split: str, answer_format: str | None) -> TextExample:
    get = ex.get if isinstance(ex, Mapping) else (lambda k, d=None: getattr(ex, k, d))
    where = f"{split} example {i}"
    question, solution = get("question"), get("solution")
    if question is None and get("prompt") is not None:
        prompt = str(get("prompt"))
        if not prompt.endswith(ANSWER_CUE):  # premem scores and samples after exactly this prompt
            raise ValueError(f"{where}: its prompt must end with {ANSWER_CUE!r} (premem.data.format.prompt_of), "
                             f"or give `question` instead")
        question = prompt[:-len(ANSWER_CUE)]
    target = get("target", get("completion"))
    if solution is None and target is not None:
        target = str(target)
        if not (target.startswith(" ") and target.endswith(STOP)):
            raise ValueError(f"{where}: its target must be ' ' + solution + {STOP!r} (premem.data.format.target_of), "
                             f"or give `solution` instead")
        solution = target[1:-len(STOP)]
    if question is None or solution is None:
        raise ValueError(f"{where}: needs `question` and `solution` (or `prompt` and `target`); a GSM8K row "
                         "holds its solution in `answer`: pass solution=row['answer']")
    fmt = answer_format or get("answer_format") or "gsm8k"
    answer = get("answer")
    if answer is None:
        answer = extract_answer(str(solution), fmt)
    if answer is None:
        raise ValueError(f"{where}: no `answer`, and its solution has no final answer in format {fmt!r}")
    ex_id = get("id")
    return TextExample(id=str(ex_id) if ex_id is not None else f"{split}-{i:05d}", question=str(question),
                       solution=str(solution), answer=str(answer), difficulty=int(get("difficulty", 0) or 0),
                       answer_format=fmt)


def _subset(examples: list, n: int | None, seed: int) -> list:
    """A seeded subset of `n` examples, in their original order (all when n is None or >= len): the same
    examples at every evaluation, so PreMemAcc's running max follows each one."""
    if n is None or n >= len(examples):
        return list(examples)
    return [examples[i] for i in subset_indices(len(examples), n / len(examples), seed)]


# ------------------------------------------------------------------------------------ leaving training alone


@contextmanager
def _untouched(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode and no gradients inside; outside, every module's train flag and every RNG as they were.

    The RNGs matter because training draws dropout masks (and, with some samplers, the data order) from them:
    an evaluation that consumed a single draw (a user's grader, a backend) would change the rest of training.
    """
    flags = [(m, m.training) for m in model.modules()]
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    saved = (random.getstate(), np.random.get_state(), torch.get_rng_state(),
             torch.cuda.get_rng_state_all() if cuda else None)
    try:
        model.eval()
        with torch.no_grad():
            yield
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        torch.set_rng_state(saved[2])
        if cuda:
            torch.cuda.set_rng_state_all(saved[3])
        for m, was in flags:  # per module: a submodule the user froze in eval mode stays so
            m.training = was


def _grading(grader: Grader):
    """evaluate_checkpoint's `grade_with` for a user's grader(completion, gold) -> True / False / None."""
    def grade_with(completions: list[str], example) -> tuple[int, int]:
        verdicts = [grader(c, example.answer) for c in completions]
        return sum(v is not None and bool(v) for v in verdicts), sum(v is None for v in verdicts)

    return grade_with


# ------------------------------------------------------------------------------------------------ callback


class PreMemAccCallback(TrainerCallback):
    """Log PreMemAcc, train and test accuracy during `Trainer.train()`, and write premem's per-example table.

    Args:
        train_examples: the training examples to evaluate (see `load_examples`: a list of dicts, premem
            examples, a JSONL path or a `premem.spec.schema.DatasetSpec`, whose test split then serves as test
            examples when `test_examples` is None).
        test_examples: held-out examples (same forms), or None (no test accuracy; `premem analyze` needs them).
        trainer: the Trainer whose `log` carries the metrics to `report_to`; or call `attach(trainer)`.
        train_subset, test_subset: how many examples to evaluate (a seeded subset, the same at every
            evaluation); None for all.
        samples: completions per prompt (k); test_samples: k for test prompts (default: samples).
        temperature, top_p, max_new_tokens: sampling (max_new_tokens in tokens; generation also stops at
            "\\nDone.").
        p: the threshold on log(log(perplexity)) (a float) or a list of them; an example is memorized where
            log(log(perplexity)) < p.
        grader: "gsm8k", "arithmetic", "math" (how premem grades that dataset), or a function
            grader(completion, gold) -> True / False / None (None: no final answer found); None: the examples'
            own answer format.
        seed: chooses the subsets and seeds sampling (checkpoint c samples with seed + c).
        output: where to write the long table (.parquet or .csv), rewritten after every evaluation; None: none.
        every_steps: evaluate every this many optimizer steps (checkpoint = global step) instead of at each
            epoch's end (checkpoint = epoch number).
        run_name: the table's `run` (default: TrainingArguments.run_name, else output_dir's name).
        settings: extra run settings written as table columns (e.g. {"model": ..., "dataset": ...}); the
            learning rate and epochs are taken from TrainingArguments.
        batch_size: prompts per sampling batch.
        codec: a premem TextCodec to use instead of the trainer's tokenizer (premem.engine.models.TextCodec).

    Metrics logged (each prefixed `premem/`): train_accuracy, test_accuracy, premem_acc and memorized_fraction
    (with one p; with a list, premem_acc_p<p> and memorized_fraction_p<p> per p), eval_seconds.
    """

    def __init__(self, train_examples, test_examples=None, *, trainer=None, train_subset: int | None = 32,
                 test_subset: int | None = 32, samples: int = 4, test_samples: int | None = None,
                 temperature: float = 0.8, top_p: float = 0.95, max_new_tokens: int = 256,
                 p: float | Sequence[float] = -2.3, grader: str | Grader | None = None, seed: int = 0,
                 output: str | Path | None = None, every_steps: int | None = None, run_name: str | None = None,
                 settings: dict | None = None, batch_size: int = 64, codec=None):
        from premem.analysis.results_table import table_format

        fmt = None if grader is None or callable(grader) else answer_format_of(grader)
        self.grader = grader if callable(grader) else None
        if test_examples is None and _is_dataset_spec(train_examples):
            test_examples = train_examples  # its test split
        train = load_examples(train_examples, "train", fmt)
        test = load_examples(test_examples, "test", fmt)
        if not train:
            raise ValueError("no train examples to evaluate")
        if samples < 1 or (test_samples is not None and test_samples < 1):
            raise ValueError("samples and test_samples must be at least 1")
        if output is not None and not test:
            warnings.warn("PreMemAccCallback without test examples: `premem analyze` needs test rows to read "
                          f"{output}", stacklevel=2)
        self.train = _subset(train, train_subset, seed)
        self.test = _subset(test, test_subset, seed + 1)
        self.ps = [float(p)] if isinstance(p, (int, float)) else [float(x) for x in p]
        self.single_p = isinstance(p, (int, float))
        if every_steps is not None and every_steps < 1:
            raise ValueError("every_steps must be at least 1")
        self.every_steps = every_steps
        self.params = SamplingParams(n=samples, temperature=temperature, top_p=top_p,
                                     max_new_tokens=max_new_tokens, stop=STOP, seed=seed)
        self.test_samples = test_samples
        self.output = Path(output) if output is not None else None
        if self.output is not None and table_format(self.output) not in ("parquet", "csv"):
            raise ValueError(f"{output}: name the table .parquet or .csv")
        self.run_name = run_name
        self.settings = dict(settings or {})
        self.batch_size = batch_size
        self.codec = codec
        self.trainer = trainer
        self.rows: list[dict] = []  # this run's rows of the long table, every evaluation so far
        self._acc: list[np.ndarray] = []  # per evaluation: train accuracy per example (subset order)
        self._nll: list[np.ndarray] = []  # per evaluation: mean target NLL per train example (nats/token)
        self._checkpoints: list[int] = []
        self._others = None  # rows of other runs already in `output`, kept when it is rewritten

    def attach(self, trainer) -> "PreMemAccCallback":
        """Log through `trainer` and add this callback to it; returns self."""
        self.trainer = trainer
        trainer.add_callback(self)
        return self

    # ------------------------------------------------------------------ trainer events

    def on_train_begin(self, args, state, control, **kwargs):
        if self.trainer is None:
            raise RuntimeError("PreMemAccCallback logs through the trainer: pass trainer=... or call "
                               "callback.attach(trainer) instead of Trainer(callbacks=[...])")
        if args.world_size > 1 and (args.fsdp or args.deepspeed):
            raise RuntimeError("PreMemAccCallback evaluates on rank 0 alone, which sharded weights (FSDP, "
                               "DeepSpeed) do not allow")

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.every_steps is None:
            self._evaluate(args, state, control, int(round(state.epoch)), kwargs)
        return control

    def on_step_end(self, args, state, control, **kwargs):
        # called once per optimizer step (after its accumulated micro-batches), not per micro-batch
        if self.every_steps is not None and state.global_step % self.every_steps == 0:
            self._evaluate(args, state, control, state.global_step, kwargs)
        return control

    # ------------------------------------------------------------------ evaluation

    def _evaluate(self, args, state, control, checkpoint: int, kw: dict) -> None:
        if not state.is_world_process_zero or checkpoint in self._checkpoints:
            return
        model = kw["model"]
        metrics = self.evaluate(model, self.codec or kw.get("processing_class"), checkpoint,
                                self._run_settings(args, model))
        if self.output is not None:
            self.write(self._name(args))
        # Trainer.log clears control.should_log, which the trainer set for this step's own loss log (the loss
        # would then be logged later, averaged over more steps): the flags are put back as they were
        flags = dict(vars(control))
        self.trainer.log(metrics)
        for obj in {id(control): control, id(self.trainer.control): self.trainer.control}.values():
            obj.__dict__.update(flags)

    def evaluate(self, model: torch.nn.Module, tokenizer, checkpoint: int, settings: dict | None = None) -> dict:
        """Evaluate `model` now as checkpoint `checkpoint` of this run (an epoch or a step: PreMemAcc's running
        max goes over checkpoints in the order evaluated) and keep its rows for `write`; for a training loop
        of your own. `tokenizer`: a transformers tokenizer or a premem codec; `settings`: run settings for the
        table's columns. Returns the metrics it would log: accuracies, PreMemAcc and memorized fractions as
        fractions in [0, 1], eval_seconds in seconds."""
        t0 = time.perf_counter()
        codec = self._codec_of(tokenizer)
        param = next(model.parameters())
        loaded = LoadedModel(model=model, codec=codec, device=param.device, dtype=param.dtype)
        params = replace(self.params, seed=self.params.seed + checkpoint)  # other draws at each checkpoint
        with _untouched(model):
            rows = evaluate_checkpoint(loaded, self.train, self.test, params, batch_size=self.batch_size,
                                       keep_samples=0, test_samples=self.test_samples,
                                       grade_with=_grading(self.grader) if self.grader is not None else None)
        train_rows = [r for r in rows if r["split"] == "train"]
        test_rows = [r for r in rows if r["split"] == "test"]
        self._acc.append(np.array([r["n_correct"] / r["n_samples"] for r in train_rows]))
        self._nll.append(np.array([r["nll"] for r in train_rows]))
        self._checkpoints.append(checkpoint)
        self._keep_rows(rows, checkpoint, settings or {})
        return self._metrics(test_rows, time.perf_counter() - t0)

    def _metrics(self, test_rows: list[dict], seconds: float) -> dict:
        acc, nll = np.stack(self._acc), np.stack(self._nll)  # (evaluations, train examples)
        out = {"premem/train_accuracy": float(acc[-1].mean())}
        if test_rows:
            out["premem/test_accuracy"] = float(np.mean([r["n_correct"] / r["n_samples"] for r in test_rows]))
        premem = premem_acc_grid(acc, nll, np.array(self.ps))[:, -1]  # running max over this run's evaluations
        for p, value in zip(self.ps, premem):
            tag = "" if self.single_p else f"_p{p:g}"
            out[f"premem/premem_acc{tag}"] = float(value)
            out[f"premem/memorized_fraction{tag}"] = float(1.0 - not_memorized(nll[-1], p).mean())
        out["premem/eval_seconds"] = seconds
        return out

    # ------------------------------------------------------------------ the long table

    def _name(self, args) -> str:
        return self.run_name or getattr(args, "run_name", None) or Path(args.output_dir).name

    def _run_settings(self, args, model) -> dict:
        epochs = float(args.num_train_epochs)
        out = {"learning_rate": float(args.learning_rate), "epochs": int(epochs) if epochs.is_integer() else epochs}
        name = getattr(getattr(model, "config", None), "_name_or_path", "")
        if name:
            out["model"] = str(name)
        return out | self.settings

    def _keep_rows(self, rows: list[dict], checkpoint: int, settings: dict) -> None:
        for r in rows:
            self.rows.append({"checkpoint": checkpoint, "split": r["split"], "example_id": str(r["example_id"]),
                              "n_samples": r["n_samples"], "n_correct": r["n_correct"],
                              "n_unparseable": r["n_unparseable"],
                              # perplexity = exp(mean NLL), as `premem export` writes it
                              "perplexity": math.exp(r["nll"]) if r["split"] == "train" else None,
                              **settings})

    def write(self, run: str) -> Path:
        """Rewrite `output` with every row evaluated so far under run name `run`, keeping other runs' rows that
        were in the file when this run first wrote (rows of an earlier run of the same name are dropped);
        returns the path. premem's long-table format: `premem analyze` reads it."""
        import pyarrow as pa

        from premem.analysis.results_table import read_table, table_format, write_table

        if self.output is None:
            raise ValueError("PreMemAccCallback(output=...) names no table to write")
        if self._others is None:  # first write of this run: keep the other runs' rows, drop an old run's own
            self._others = pa.table({})
            if self.output.exists():
                old = read_table(self.output)
                keep = [str(x) != run for x in old.column("run").to_pylist()]
                self._others = old.filter(pa.array(keep))
        mine = pa.Table.from_pylist([{"run": run, **r} for r in self.rows])
        table = mine if self._others.num_columns == 0 else \
            pa.concat_tables([self._others, mine], promote_options="permissive")
        self.output.parent.mkdir(parents=True, exist_ok=True)
        return write_table(table, self.output, table_format(self.output))

    def _codec_of(self, processing_class):
        """premem's codec for the tokenizer (made once, then reused)."""
        if self.codec is None:
            tok = getattr(processing_class, "tokenizer", processing_class)  # a multimodal processor's tokenizer
            if tok is None:
                raise RuntimeError("no tokenizer: give the Trainer processing_class=tokenizer, or codec=...")
            if hasattr(tok, "pad_id") and hasattr(tok, "encode"):  # already a premem codec (WordTokenizer)
                self.codec = tok
            else:
                from premem.engine.hf import HFCodec

                # a copy: HFCodec gives a tokenizer without one a pad token, which the trainer's must not get
                self.codec = HFCodec(copy.deepcopy(tok))
        return self.codec
