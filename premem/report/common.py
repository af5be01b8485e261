"""Helpers shared by the report's pages: number formatting, CSV text, JSON-safe copies, slugs.

Everything here tolerates missing or malformed input (None, NaN, strings where numbers are expected):
a value that is not a finite number is shown as "–" and written to CSV as an empty cell.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from typing import Any, Iterable, Mapping, Sequence

from premem.csvsafe import safe_cell

DASH = "–"


def num(v: Any) -> float | None:
    """``v`` as a finite float, else None (bools are not numbers here)."""
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def format_num(v: Any, decimals: int = 3) -> str:
    """``v`` with ``decimals`` decimals; "–" when missing or not a finite number."""
    f = num(v)
    if f is None:
        return DASH
    s = f"{f:.{decimals}f}"
    if s.lstrip("-").strip("0.") == "":
        s = s.lstrip("-")  # no "-0.000"
    return s


def format_sig(v: Any, digits: int = 4) -> str:
    """``v`` with ``digits`` significant digits (scientific notation when very small or large); "–" if missing.
    For measures whose scale is unknown in advance (gradient variance, weight distance)."""
    f = num(v)
    if f is None:
        return DASH
    if f == 0:
        return "0"
    if 1e-3 <= abs(f) < 1e5:
        return f"{f:.{digits}g}"
    m, e = f"{f:.{digits - 1}e}".split("e")
    if "." in m:
        m = m.rstrip("0").rstrip(".")
    return f"{m}e{int(e)}"


def format_lr(v: Any) -> str:
    """Learning rate in scientific notation: 2e-5, 2.5e-4; "–" when missing."""
    f = num(v)
    if f is None:
        return DASH
    if f == 0:
        return "0"
    m, e = f"{f:.2e}".split("e")
    m = m.rstrip("0").rstrip(".")
    return f"{m}e{int(e)}"


def format_general(v: Any) -> str:
    """Integers as integers, other numbers with 4 significant digits, anything else as text; "–" if None/NaN."""
    f = num(v)
    if f is None:
        return DASH if v is None or isinstance(v, float) else str(v)
    if f == int(f) and abs(f) < 1e15:
        return str(int(f))
    return f"{f:.4g}"


def format_p(v: Any) -> str:
    """A p value (log(log(perplexity)) scale): up to 3 decimals, at least one."""
    f = num(v)
    if f is None:
        return DASH
    s = f"{f:.3f}".rstrip("0")
    return s + "0" if s.endswith(".") else s


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """CSV text with ``header``; None and non-finite floats become empty cells, and text a spreadsheet would
    run as a formula gets a leading single quote (:mod:`premem.csvsafe`)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([safe_cell(h) for h in header])
    for r in rows:
        w.writerow(["" if v is None or (isinstance(v, float) and not math.isfinite(v)) else safe_cell(v) for v in r])
    return buf.getvalue()


def jsonable(obj: Any) -> Any:
    """A JSON-safe copy: numpy scalars/arrays to Python, paths to str, NaN/inf to None, keys to str."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "tolist"):  # numpy arrays and scalars
        return jsonable(obj.tolist())
    if hasattr(obj, "item"):
        return jsonable(obj.item())
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return str(obj)


def slug(s: str, taken: set[str]) -> str:
    """A file-name-safe, case-insensitively unique form of ``s`` (recorded in ``taken``)."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("._-")[:60] or "run"
    out, k = base, 2
    while out.lower() in taken:
        out = f"{base}_{k}"
        k += 1
    taken.add(out.lower())
    return out


def as_dict(v: Any) -> dict:
    return dict(v) if isinstance(v, Mapping) else {}


def as_list(v: Any) -> list:
    if v is None or isinstance(v, (str, bytes, Mapping)):
        return []
    if hasattr(v, "tolist"):
        v = v.tolist()
    try:
        return list(v)
    except TypeError:
        return []


def short(text: str, n: int = 90) -> str:
    """The first line of ``text``, cut to ``n`` characters with an ellipsis."""
    first = text.strip().splitlines()[0] if text.strip() else text
    return first if len(first) <= n else first[: n - 1] + "…"


def quantiles(values: Sequence[float]) -> dict[str, float | None]:
    """Mean, median and quartiles (linear interpolation, as numpy's default) of the finite ``values``."""
    vs = sorted(v for v in (num(x) for x in values) if v is not None)
    if not vs:
        return {"mean": None, "median": None, "q1": None, "q3": None}

    def q(p: float) -> float:
        pos = p * (len(vs) - 1)
        lo = math.floor(pos)
        hi = min(lo + 1, len(vs) - 1)
        return vs[lo] + (vs[hi] - vs[lo]) * (pos - lo)

    return {"mean": sum(vs) / len(vs), "median": q(0.5), "q1": q(0.25), "q3": q(0.75)}


# --------------------------------------------------------------------------------------------- intervals


def ci_bounds(v: Any) -> tuple[float | None, float | None] | None:
    """An interval ``[low, high]`` as (low, high), each a finite float or None; None when ``v`` is not a pair or
    has neither bound (a summary without intervals, or a bootstrap that could not be computed)."""
    xs = as_list(v)
    if len(xs) != 2:
        return None
    lo, hi = num(xs[0]), num(xs[1])
    return None if lo is None and hi is None else (lo, hi)


def format_ci(v: Any, decimals: int = 3, fmt: Any = None) -> str:
    """The interval ``v`` as "[low, high]", each bound formatted as its value is (``fmt``, else ``decimals``
    decimals); "" when there is no interval, so a summary without intervals shows its numbers as before."""
    b = ci_bounds(v)
    if b is None:
        return ""
    f = fmt or (lambda x: format_num(x, decimals))
    return f"[{f(b[0])}, {f(b[1])}]"


def with_ci(value: Any, ci: Any, decimals: int = 3, fmt: Any = None) -> str:
    """``value`` followed by its interval: "0.853 [0.781, 0.902]"; the value alone when it has none."""
    text = fmt(value) if fmt else format_num(value, decimals)
    c = format_ci(ci, decimals, fmt)
    return f"{text} {c}" if c else text


def ci_cells(v: Any) -> list[float | None]:
    """The interval ``v`` as two CSV cells (low, high); empty cells when there is none."""
    b = ci_bounds(v)
    return [None, None] if b is None else list(b)


def intervals_note(meta: Any) -> str | None:
    """The line that says, once per page, what the printed intervals are: "95 % percentile bootstrap intervals,
    1,000 resamples, seed 0 — resampled: ..." from ``summary["intervals"]``; None when the summary has none."""
    m = as_dict(meta)
    if not m:
        return None
    level = num(m.get("level"))
    parts = [f"{level * 100:g} % " if level is not None else ""]
    parts[0] += f"{m.get('method') or 'bootstrap'} intervals"
    n = num(m.get("resamples"))
    if n is not None:
        parts.append(f"{int(n):,} resamples")
    if m.get("seed") is not None:
        parts.append(f"seed {m.get('seed')}")
    text = ", ".join(parts)
    if m.get("resampled"):
        text += f" — resampled: {m.get('resampled')}"
    return text
