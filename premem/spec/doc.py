"""docs/SPEC.md, rendered from the spec's pydantic models: every section, field, type, default and description.

The schema in premem/spec/schema.py is the one place a field is described; this module only lays it out as Markdown, in
the order of the spec's sections, each model once (at its first appearance; later uses link to it). The output is
deterministic (no dates, no addresses, no hash order), so `tests/spec/test_doc.py` can compare docs/SPEC.md with
a fresh render. Regenerate with `python -m premem.spec.doc > docs/SPEC.md` (or `premem schema --markdown`).
"""
from __future__ import annotations

import inspect
import json
import re
import types
import typing
from typing import Annotated, Any, Literal, Union

import annotated_types as at
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from premem.measures import atc, gradient_variance, weight_distance
from premem.spec import schema as spec_module
from premem.spec.schema import Spec

REGENERATE = "python -m premem.spec.doc > docs/SPEC.md"

PREAMBLE = f"""\
# The spec, field by field

<!-- Generated from premem/spec/schema.py by premem/spec/doc.py: do not edit by hand. Regenerate with
     `{REGENERATE}` (or `premem schema --markdown > docs/SPEC.md`); tests/spec/test_doc.py fails when
     this file is stale. -->

A study is one YAML file: the sections below, in this order. `premem validate SPEC` checks a spec and prints every
problem at once as `FILE:LINE: field.path: message`; `premem schema` prints the same schema as JSON Schema (for
editors). Annotated examples: `specs/quickstart.yaml`, `specs/smoke.yaml`, `specs/paper.yaml`.

How to read the tables: *type* is what the field takes (`null` where it may be left empty; ranges are inclusive
unless written `>`/`<`; a list's own range is its length); *default* is the value a field left out takes, **required** where it has
none; a section given as `{{}}` takes every default of its fields. Rules that hold everywhere:
- an unknown key is an error (with a "did you mean" where one is close), never silently ignored;
- no number may be NaN or infinite, and no string may hold a control character (free-text fields such as
  `evaluation.stop` and `perturbations.preambles` may hold tabs and newlines);
- relative paths (store, report, data files, model folders) are relative to the working directory;
- rules across fields (exactly one source per model and dataset, names that must exist, selectors that must
  match a run, the plan's size limit) are checked by `premem validate` too, each with its line.
"""

#: Facts about a section that its models' descriptions do not hold yet, shown under its table. Each belongs in a
#: field description in premem/spec/schema.py; once it is there, delete it here.
NOTES: dict[type, str] = {
    spec_module.ModelSpec: "A built-in model's `pretrain` stage is a cached job like any other. Hugging Face "
    "models, LoRA, shards and recipes per model: docs/MODELS.md.",
    spec_module.DatasetSpec: "Example ids are `<split>-<row index>` (`train-00012`: the row's index in its split, "
    "whatever is filtered or capped). Local files are read through `datasets.load_dataset` (`json`, `parquet`, "
    "`arrow`) and their content hash is part of the jobs' identity, so editing a data file reruns the jobs that "
    "read it. Hub datasets are downloaded to the Hugging Face cache on first use (`HF_DATASETS_OFFLINE=1` uses the "
    "cache only); pin `revision` for reproducibility.",
    spec_module.Gsm8kSource: "The solution trained on is the `answer` field as it is (calculator annotations "
    "`<<...>>` and the final `#### N` included); the gold answer is the text after `####`. A row whose gold "
    "answer does not parse is an error that names it. Difficulty: solution lines before `####` (the paper's "
    "heuristic).",
    spec_module.MathSource: "The original `hendrycks/competition_math` left the Hub (DMCA takedown, 2025). The "
    "gold answer is the last `\\boxed{}`/`\\fbox{}` of the solution; the few rows that have none are skipped and "
    "counted (not an error). Difficulty: the level.",
    spec_module.Grid: "Runs are crossed with every model and dataset. With `seeds`, pretraining stays one per "
    "model; a seed equal to the spec's gives the same job ids as no seed; run selectors accept `seed`. "
    "`summary.json` gives every run its `seed`, and `seed_groups` (runs that differ only by seed) per-epoch means "
    "of test accuracy, PreMemAcc and train accuracy with 95 % Student-t intervals over seeds "
    "(`premem/analysis/seeds.py`); the report lists them under Seeds.",
    spec_module.Evaluation: "`skip_settled`: the skipped example is left out of train accuracy (never counted as "
    "right or wrong) and drawn as missing in the dynamics picture; a target's perplexity is always computed first; an evaluation's identity includes the bound, "
    "so changing the smallest p reruns those evaluations; sampling keeps its seed, so where nothing is skipped "
    "the results are identical. It saves only what goes below the grid's smallest p: nothing on the quickstart "
    "(whose targets never get below log(NLL) = -1.73), 7.4 % of train samples with the grid starting at -0.75 "
    "(bench/README.md).",
    spec_module.PreMem: "On the authors' own GSM8K and MATH results in one table, `per_block` gives p = -2.30 / "
    "-1.65 and R^2 0.935 / 0.938 (the paper: 0.94 / 0.95); `pooled` gives one p = -2.25 and leaves MATH at R^2 "
    "0.48 (bench/README.md).",
    gradient_variance.GradientVariance: "The gradient is of the mean target NLL over M consecutive minibatches; the "
    "per-parameter sample variance across the M is streamed (two model-sized buffers, never M gradients), its "
    "running statistics kept in host memory (8 bytes per parameter, beside the model's own gradients).",
    weight_distance.WeightDistance: "The base is the run's starting model.",
    atc.Atc: "One greedy sample per evaluated train prompt. Every other checkpoint's predicted accuracy is "
    "the fraction of its scores above the threshold.",
    spec_module.Metrics: "Each measure is its own job per checkpoint, so adding one to a finished study computes "
    "only it. The report plots each against the generalization gap (for PreMemAcc and ATC, the gap they predict: "
    "train accuracy minus their accuracy) with Pearson r and Kendall tau over the checkpoints of `metrics.runs`; "
    "`summary.json` carries them as `baselines.<name>.pearson_gap`, `kendall_gap`, `pearson_test`, "
    "`kendall_test`. ATC's greedy samples are drawn with premem's own transformers sampler whatever "
    "`evaluation.sampler` says.",
    spec_module.Perturbations: "Each perturbed checkpoint is sampled under the original prompt and each preamble; "
    "each example's accuracy is binned by its PreMemAcc at that checkpoint and pooled over the perturbed "
    "checkpoints: `summary.json` has `robustness.<prompt>.<bin>` = {n, mean, median, q1, q3, values}, the "
    "report draws violins; `premem export SPEC --table perturbations` writes the per-example rows. Sampled with "
    "premem's own transformers sampler whatever `evaluation.sampler` says (vLLM serves the evaluation only, for "
    "now).",
    spec_module.Curation: "`variants` (built-in task): fresh problems of the same template and difficulty with new "
    "numbers, names and phrasing. `premem`: when no original is at or below the threshold, the lowest are used and the "
    "round says so. A round draws its examples round-robin over a seeded shuffle of the chosen originals; an "
    "original's j-th variant is the same whichever strategy draws it. Each round is a chain of jobs with content "
    "hashes (train, evaluate, collect), so a crash in round 3 resumes in round 3 and changing only `threshold` "
    "reruns only premem's rounds. Sample efficiency at a target: iid's training-set size divided by the "
    "strategy's, by linear interpolation along each curve (`summary.json`: `curation.<strategy>.efficiency`, "
    "`mean_ratio`); with `seeds`, efficiency ratios are read per seed at common targets and averaged with 95 % "
    "t-intervals (`<key>_ci`; each seed's own under `curation.per_seed`), drawn as bands.",
    spec_module.PoolSource: "An original that runs out of variants is skipped and named in the round's result; a "
    "round the chosen originals cannot fill stops with an error saying how many are left. Variants are used in "
    "file order.",
    spec_module.GenerateSource: "Generated examples are kept in the store (a re-apply does not regenerate them).",
    spec_module.IfdScoring: "IFD = ppl(solution | question) / ppl(solution after the answer cue alone). Scores "
    "are keyed to their dataset and checked (the authors' MATH run read GSM8K's).",
}


# ------------------------------------------------------------------------------------------------ text
def _escape(text: str) -> str:
    """Text for a Markdown table cell: `|` escaped everywhere (GFM splits cells on it, code spans included),
    and a `<` that would open an HTML tag outside code spans as an entity (`.../seed<s>` is not a tag)."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # outside code spans
        parts[i] = re.sub(r"<(?=[A-Za-z/!?])", "&lt;", parts[i])
    return "`".join(parts).replace("|", "\\|").replace("\n", " ")


def _doc(cls: type) -> str:
    """A model's own docstring (not its base's) as one paragraph; a newline inside a code span (a prompt's
    `"\\nAnswer:"`) written as `\\n`."""
    doc = cls.__dict__.get("__doc__")
    if not doc:
        return ""
    parts = inspect.cleandoc(doc).split("`")
    for i in range(1, len(parts), 2):
        parts[i] = parts[i].replace("\n", "\\n")
    return " ".join("`".join(parts).split())


def anchor(cls: type) -> str:
    return cls.__name__.lower()


def _value(v: Any) -> str:
    """A default as YAML-ish flow text."""
    if isinstance(v, BaseModel):
        return "{}"
    if isinstance(v, tuple):
        v = list(v)
    return json.dumps(v)


# ------------------------------------------------------------------------------------------------ types
def _bounds(meta: list) -> str:
    """`1 to 48`, `>= 0`, `> 0`, ... from annotated_types / Field constraints."""
    lo = hi = ""
    extra = []
    for m in meta:
        if isinstance(m, at.Ge):
            lo = f"{m.ge:g}" if isinstance(m.ge, float) else f"{m.ge:,}"
        elif isinstance(m, at.Gt):
            lo = f"> {m.gt:g}"
        elif isinstance(m, at.Le):
            hi = f"{m.le:g}" if isinstance(m.le, float) else f"{m.le:,}"
        elif isinstance(m, at.Lt):
            hi = f"< {m.lt:g}"
        elif isinstance(m, at.MinLen) and m.min_length > 0:
            extra.append(f"{m.min_length} or more")
        elif isinstance(m, FieldInfo):
            extra.append(_bounds(m.metadata))
    if lo and hi:
        plain = not lo.startswith(">") and not hi.startswith("<")
        rng = f"{lo} to {hi}" if plain else f"{lo if lo.startswith('>') else '>= ' + lo}, " \
            f"{hi if hi.startswith('<') else '<= ' + hi}"
    elif lo:
        rng = lo if lo.startswith(">") else f">= {lo}"
    elif hi:
        rng = hi if hi.startswith("<") else f"<= {hi}"
    else:
        rng = ""
    return ", ".join(x for x in [rng, *extra] if x)


def _validator_name(meta: list) -> str | None:
    """A plain-words name for the str types premem checks with a validator of its own."""
    for m in meta:
        func = getattr(getattr(m, "func", None), "__name__", None)  # by name: spec.py keeps them private
        if func == "_data_file":
            return "file path"
        if func == "_hf_source":
            return "hub id or folder"
    return None


def render_type(tp: Any, meta: list | None = None) -> str:
    """A field's type in words: `int (1 to 48)`, `` `adamw` or `adam` ``, `[RunSelector]`, ..."""
    meta = list(meta or [])
    origin = typing.get_origin(tp)
    if origin is Annotated:
        base, *more = typing.get_args(tp)
        return render_type(base, meta + more)
    bounds = _bounds(meta)
    named = _validator_name(meta)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        parts = [render_type(a, meta if a is not type(None) else []) for a in args if a is not type(None)]
        text = " or ".join(parts)
        return f"{text} or null" if type(None) in args else text
    if named:
        return named
    if origin is Literal:
        text = " or ".join(f"`{json.dumps(a) if not isinstance(a, str) else a}`" for a in typing.get_args(tp))
    elif origin in (list, tuple):
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            text = "[" + ", ".join(render_type(a) for a in args) + "]"
        else:
            text = f"list ({bounds}) of {render_type(args[0])}" if bounds else f"list of {render_type(args[0])}"
            bounds = ""  # a list's bounds are its length's
    elif isinstance(tp, type) and issubclass(tp, BaseModel):
        text = f"[{tp.__name__}](#{anchor(tp)})"
    elif tp is type(None):
        text = "null"
    elif isinstance(tp, type):
        text = tp.__name__
    else:
        text = str(tp)
    if bounds and origin is not Literal:
        text = f"{text} ({bounds})" if not (tp is str and bounds == "1 or more") else f"{text} (non-empty)"
    return text


def models_in(tp: Any) -> list[type[BaseModel]]:
    """The spec models a type mentions, in order."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    out: list = []
    for a in typing.get_args(tp):
        out += [m for m in models_in(a) if m not in out]
    return out


# ------------------------------------------------------------------------------------------------ tables
def _default(f: FieldInfo) -> str:
    if f.is_required():
        return "**required**"
    v = f.default_factory() if f.default_factory is not None else f.default
    return f"`{_escape(_value(v))}`"


def field_table(cls: type[BaseModel], prefix: str) -> list[str]:
    rows = ["| field | type | default | description |", "| --- | --- | --- | --- |"]
    for name, f in cls.model_fields.items():
        rows.append(f"| `{prefix}{name}` | {_escape(render_type(f.annotation, f.metadata))} | {_default(f)} | "
                    f"{_escape(f.description or '')} |")
    return rows


def _sections(root: type[BaseModel]) -> list[tuple[type[BaseModel], str, int]]:
    """(model, its path at first appearance, depth), depth first in field order, each model once."""
    seen: set[type] = {root}
    out: list[tuple[type[BaseModel], str, int]] = []

    def walk(cls: type[BaseModel], path: str, depth: int) -> None:
        for name, f in cls.model_fields.items():
            for m in models_in(f.annotation):
                if m in seen:
                    continue
                seen.add(m)
                is_list = typing.get_origin(f.annotation) is list or any(
                    typing.get_origin(a) is list for a in typing.get_args(f.annotation))
                sub = f"{path}{name}{'[]' if is_list else ''}"
                out.append((m, sub, depth))
                walk(m, f"{sub}.", depth + 1)

    walk(root, "", 0)
    return out


def render() -> str:
    """docs/SPEC.md: the preamble, the top-level fields, then every section's models."""
    lines = [PREAMBLE, "## Top level", "", _escape(_doc(Spec)), "", *field_table(Spec, ""), ""]
    for cls, path, depth in _sections(Spec):
        lines += [f'<a id="{anchor(cls)}"></a>', "",
                  f"{'##' if depth == 0 else '###'} `{path}` ({cls.__name__})", ""]
        if _doc(cls):
            lines += [_escape(_doc(cls)), ""]
        lines += field_table(cls, "")
        if cls in NOTES:
            lines += ["", f"Also: {_escape(NOTES[cls])}"]
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def top_level_fields() -> list[str]:
    return list(Spec.model_fields)


if __name__ == "__main__":
    print(render(), end="")
