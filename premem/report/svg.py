"""Small, dependency-free SVG chart helpers.

Every function returns an SVG document fragment as a string (``<svg xmlns=...>...</svg>``) that can be
inlined into an HTML page or saved as a ``.svg`` file.  All text that ends up in the output is XML-escaped,
so run names, example ids and labels may contain any characters.

Charts:

* :func:`scatter_chart` -- series of (x, y) points joined by lines, one colour per series, a marker per point
  with a ``<title>`` tooltip, an optional ``y = x`` diagonal and an annotation such as ``"R² = 0.91"``; a
  point's intervals, when given, as error bars.
* :func:`line_chart` -- the same machinery tuned for curves (e.g. R² against p) with an optional vertical
  marker; a curve's intervals, when given, as a shaded band.
* :func:`heatmap` -- a categorical heatmap (rows x columns of small cells, each cell one of a few categories)
  with a legend.
* :func:`bar_chart` and :func:`histogram`.
* :func:`violin_chart` -- grouped violins (one group per category on x, one violin per series in each group)
  with the median, the quartiles and n drawn on each (and the mean with its interval, when given).
* :func:`legend` -- a standalone legend (swatch + label per item).

Missing values (``None``, NaN, +-inf, anything that is not a number) are skipped, never fatal.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from .common import num as _num  # a finite float, else None

__all__ = [
    "PALETTE",
    "SVG_NS",
    "Series",
    "axis_range",
    "bar_chart",
    "color_for",
    "escape",
    "heatmap",
    "histogram",
    "legend",
    "line_chart",
    "nice_ticks",
    "scatter_chart",
    "Violin",
    "violin_chart",
]

SVG_NS = "http://www.w3.org/2000/svg"
FONT = "system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif"

#: 20 colours that stay distinguishable on white; cycles after that (with a different marker shape).
PALETTE: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173",
    "#252525", "#e7969c", "#9c9ede", "#fdae6b", "#74c476",
)
_MARKERS = ("circle", "square", "triangle", "diamond")

_ids = itertools.count(1)

TEXT = "#222"
MUTED = "#666"
GRID = "#e6e6e6"
AXIS = "#999"


# --------------------------------------------------------------------------------------------- basics


def escape(text: Any) -> str:
    """XML-escape ``text`` (converted with ``str``) for element content and attribute values.

    Characters that XML 1.0 forbids (control characters other than tab/newline/CR) are dropped so the
    result always parses.
    """
    s = "" if text is None else str(text)
    s = "".join(ch for ch in s if ch in "\t\n\r" or ord(ch) >= 0x20)
    s = "".join(ch for ch in s if not (0xD800 <= ord(ch) <= 0xDFFF) and ch not in "\ufffe\uffff")
    return (
        s.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


def color_for(index: int) -> str:
    """Palette colour of series number ``index`` (cycles after 20)."""
    return PALETTE[index % len(PALETTE)]



def _f(v: float) -> str:
    """Compact coordinate formatting."""
    s = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _attrs(**kw: Any) -> str:
    parts = []
    for k, v in kw.items():
        if v is None:
            continue
        name = k.rstrip("_").replace("_", "-")
        if isinstance(v, float):
            v = _f(v)
        parts.append(f'{name}="{escape(v)}"')
    return " ".join(parts)


def _text(x: float, y: float, s: Any, *, size: float = 11, anchor: str = "start", weight: str | None = None,
          fill: str = TEXT, rotate: float | None = None, halo: bool = False, baseline: str | None = None) -> str:
    transform = f"rotate({_f(rotate)} {_f(x)} {_f(y)})" if rotate else None
    extra = ""
    if halo:
        extra = ' paint-order="stroke" stroke="#fff" stroke-width="3" stroke-linejoin="round"'
    a = _attrs(x=x, y=y, font_size=size, text_anchor=anchor, font_weight=weight, fill=fill, transform=transform,
               dominant_baseline=baseline)
    return f"<text {a}{extra}>{escape(s)}</text>"


def _open_svg(width: float, height: float, label: str) -> str:
    return (
        f'<svg xmlns="{SVG_NS}" width="{_f(width)}" height="{_f(height)}" '
        f'viewBox="0 0 {_f(width)} {_f(height)}" role="img" aria-label="{escape(label)}" '
        f'font-family="{FONT}" class="chart">'
    )


def _text_width(s: str, size: float) -> float:
    """Rough width of ``s`` in px at ``size`` (no font metrics available)."""
    return 0.58 * size * len(s)


def _truncate(s: str, n: int) -> str:
    return s if len(s) <= n else s[: max(1, n - 1)] + "…"


# --------------------------------------------------------------------------------------------- axes


def _nice_step(span: float, n: int) -> float:
    raw = span / max(1, n)
    if raw <= 0 or not math.isfinite(raw):
        return 1.0
    mag = 10 ** math.floor(math.log10(raw))
    norm = raw / mag
    for m in (1, 2, 2.5, 5, 10):
        if norm <= m + 1e-9:
            return m * mag
    return 10 * mag


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values inside ``[lo, hi]`` (inclusive, up to rounding)."""
    lo_f, hi_f = _num(lo), _num(hi)
    if lo_f is None or hi_f is None:
        return []
    if hi_f < lo_f:
        lo_f, hi_f = hi_f, lo_f
    if hi_f == lo_f:
        return [lo_f]
    step = _nice_step(hi_f - lo_f, n)
    eps = step * 1e-9
    start = math.ceil((lo_f - eps) / step)
    out = []
    k = start
    while k * step <= hi_f + eps and len(out) < 1000:
        out.append(round(k * step, 12) + 0.0)
        k += 1
    return out


def axis_range(values: Iterable[Any], *, n: int = 5, include: Iterable[float] = ()) -> tuple[float, float]:
    """A tidy axis range covering the finite ``values`` (and ``include``), expanded to round tick steps.

    Non-numbers are ignored.  No values gives ``(0.0, 1.0)``; a single value gives a small range around it.
    """
    vals = [v for v in (_num(x) for x in itertools.chain(values, include)) if v is not None]
    if not vals:
        return (0.0, 1.0)
    lo, hi = min(vals), max(vals)
    if lo == hi:
        d = abs(lo) * 0.1 or 0.5
        lo, hi = lo - d, hi + d
    step = _nice_step(hi - lo, n)
    return (round(math.floor(lo / step + 1e-9) * step, 12) + 0.0, round(math.ceil(hi / step - 1e-9) * step, 12) + 0.0)


def _tick_label(v: float, ticks: Sequence[float]) -> str:
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else (abs(v) or 1.0)
    big = max(abs(t) for t in ticks) if ticks else abs(v)
    if big >= 1e5 or (big and big < 1e-3):
        # scientific notation, each tick with its own exponent and as many mantissa decimals as the step
        # needs (3.25e-6, not 3.2e-6; 8e-6 then 1e-5, not 0.8e-5)
        if abs(v) < step * 1e-6:
            return "0"
        exp = math.floor(math.log10(abs(v)) + 1e-9)
        m_step = step / 10 ** exp
        dec = 0
        while dec < 6 and abs(round(m_step, dec) - m_step) > m_step * 1e-6:
            dec += 1
        m = v / 10 ** exp
        return "0" if abs(m) < 1e-9 else f"{m:.{dec}f}e{exp}"
    decimals = 0
    while decimals < 6 and abs(round(step, decimals) - step) > step * 1e-6:
        decimals += 1
    s = f"{v:.{decimals}f}"
    return "0" if s.strip("-0.") == "" else s


class _Scale:
    def __init__(self, d0: float, d1: float, r0: float, r1: float):
        self.d0, self.d1, self.r0, self.r1 = d0, d1, r0, r1

    def __call__(self, v: float) -> float:
        span = self.d1 - self.d0
        if span == 0:
            return (self.r0 + self.r1) / 2
        return self.r0 + (v - self.d0) / span * (self.r1 - self.r0)


# --------------------------------------------------------------------------------------------- xy charts


@dataclass
class Series:
    """One series of an xy chart.

    ``points`` are (x, y) pairs in drawing order (missing values allowed: they break the line and get no
    marker).  ``tooltips`` (optional) gives one text per point for the marker's ``<title>``; by default the
    tooltip is the series name and the point's values.  ``href`` (optional) makes every marker of the series,
    and its legend entry, a link (e.g. to the run's page).

    Intervals (optional, one entry per point, each a (low, high) pair or None): ``x_errors`` and ``y_errors``
    are drawn as horizontal and vertical error bars; with ``band`` the ``y_errors`` are drawn instead as a
    shaded band along the line (curves over epochs or sizes).  A missing bound ends the bar at the point.
    """

    name: str
    points: Sequence[tuple[Any, Any]]
    tooltips: Sequence[str] | None = None
    color: str | None = None
    dashed: bool = False
    href: str | None = None
    x_errors: Sequence[Any] | None = None
    y_errors: Sequence[Any] | None = None
    band: bool = False


def _as_series(s: Series | Mapping[str, Any]) -> Series:
    if isinstance(s, Series):
        return s
    return Series(
        name=str(s.get("name", "")),
        points=list(s.get("points") or []),
        tooltips=s.get("tooltips"),
        color=s.get("color"),
        dashed=bool(s.get("dashed", False)),
        href=s.get("href"),
        x_errors=s.get("x_errors"),
        y_errors=s.get("y_errors"),
        band=bool(s.get("band", False)),
    )


def _bounds(errors: Sequence[Any] | None, j: int) -> tuple[float | None, float | None]:
    """Point ``j``'s (low, high) from a series' ``x_errors``/``y_errors``; (None, None) when absent."""
    if errors is None or j >= len(errors) or errors[j] is None:
        return (None, None)
    try:
        lo, hi = errors[j]
    except (TypeError, ValueError):
        return (None, None)
    return (_num(lo), _num(hi))


def _error_bars(s: Series, pairs: list[tuple[float | None, float | None]], sx: Any, sy: Any, color: str) -> str:
    """The series' error bars (capped lines, horizontal for ``x_errors``, vertical for ``y_errors`` unless drawn
    as a band) as one ``<g class="errbars">``; "" when it has none."""
    cap = 3.0
    lines = []
    for j, (x, y) in enumerate(pairs):
        if x is None or y is None:
            continue
        lo, hi = _bounds(s.x_errors, j)
        if lo is not None or hi is not None:
            a, b = sx(lo if lo is not None else x), sx(hi if hi is not None else x)
            lines.append(f'<path d="M{_f(a)},{_f(sy(y))}H{_f(b)}'
                         + (f'M{_f(a)},{_f(sy(y) - cap)}V{_f(sy(y) + cap)}' if lo is not None else "")
                         + (f'M{_f(b)},{_f(sy(y) - cap)}V{_f(sy(y) + cap)}' if hi is not None else "") + '"/>')
        lo, hi = (None, None) if s.band else _bounds(s.y_errors, j)
        if lo is not None or hi is not None:
            a, b = sy(lo if lo is not None else y), sy(hi if hi is not None else y)
            lines.append(f'<path d="M{_f(sx(x))},{_f(a)}V{_f(b)}'
                         + (f'M{_f(sx(x) - cap)},{_f(a)}H{_f(sx(x) + cap)}' if lo is not None else "")
                         + (f'M{_f(sx(x) - cap)},{_f(b)}H{_f(sx(x) + cap)}' if hi is not None else "") + '"/>')
    if not lines:
        return ""
    return (f'<g class="errbars" fill="none" stroke="{escape(color)}" stroke-width="1.1" opacity="0.7">'
            + "".join(lines) + "</g>")


def _band(s: Series, pairs: list[tuple[float | None, float | None]], sx: Any, sy: Any, color: str, clip: str) -> str:
    """The series' ``y_errors`` as a shaded band (one polygon per run of points with both bounds); "" without."""
    if not s.band or s.y_errors is None:
        return ""
    runs, cur = [], []
    for j, (x, _y) in enumerate(pairs):
        lo, hi = _bounds(s.y_errors, j)
        if x is None or lo is None or hi is None:
            if cur:
                runs.append(cur)
            cur = []
            continue
        cur.append((x, lo, hi))
    if cur:
        runs.append(cur)
    paths = []
    for r in runs:
        if len(r) < 2:
            continue
        up = [f"{_f(sx(x))},{_f(sy(hi))}" for x, _, hi in r]
        down = [f"{_f(sx(x))},{_f(sy(lo))}" for x, lo, _ in reversed(r)]
        paths.append(f'<path class="band" d="M{"L".join(up + down)}Z" fill="{escape(color)}" fill-opacity="0.16" '
                     f'stroke="none"{clip}/>')
    return "".join(paths)


def _marker(shape: str, x: float, y: float, r: float, color: str, tip: str, hollow: bool = False) -> str:
    fill = "#fff" if hollow else color
    stroke = color if hollow else "#fff"
    style = f'fill="{escape(fill)}" stroke="{escape(stroke)}" stroke-width="1" class="pt"'
    title = f"<title>{escape(tip)}</title>"
    if shape == "square":
        return f'<rect x="{_f(x - r)}" y="{_f(y - r)}" width="{_f(2 * r)}" height="{_f(2 * r)}" {style}>{title}</rect>'
    if shape == "triangle":
        h = r * 1.2
        d = f"M{_f(x)},{_f(y - h)}L{_f(x + h)},{_f(y + h * 0.8)}L{_f(x - h)},{_f(y + h * 0.8)}Z"
        return f'<path d="{d}" {style}>{title}</path>'
    if shape == "diamond":
        h = r * 1.3
        d = f"M{_f(x)},{_f(y - h)}L{_f(x + h)},{_f(y)}L{_f(x)},{_f(y + h)}L{_f(x - h)},{_f(y)}Z"
        return f'<path d="{d}" {style}>{title}</path>'
    return f'<circle cx="{_f(x)}" cy="{_f(y)}" r="{_f(r)}" {style}>{title}</circle>'


def _default_tip(name: str, x: float, y: float, x_label: str, y_label: str) -> str:
    return f"{name}\n{x_label or 'x'}: {x:.3f}\n{y_label or 'y'}: {y:.3f}"


def _xy_chart(
    series: Sequence[Series | Mapping[str, Any]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    x_range: tuple[float, float] | None,
    y_range: tuple[float, float] | None,
    diagonal: bool,
    annotation: str | Sequence[str] | None,
    width: float,
    height: float,
    markers: bool,
    marker_radius: float,
    connect: bool,
    show_legend: bool,
    vline: float | None,
    vline_label: str | None,
    clip: bool,
    empty_text: str,
    subtitle: str | Sequence[str] | None = None,
    x_integer: bool = False,
) -> str:
    ss = [_as_series(s) for s in series]
    pts_all = [(_num(x), _num(y)) for s in ss for (x, y) in _pairs(s.points)]
    xs = [p[0] for p in pts_all if p[0] is not None and p[1] is not None]
    ys = [p[1] for p in pts_all if p[0] is not None and p[1] is not None]
    for s in ss:  # intervals stay inside an automatic range
        for j, (x, y) in enumerate(_pairs(s.points)):
            if _num(x) is None or _num(y) is None:
                continue
            xs += [v for v in _bounds(s.x_errors, j) if v is not None]
            ys += [v for v in _bounds(s.y_errors, j) if v is not None]

    x_lo, x_hi = _fixed_or_auto(x_range, xs, [vline] if _num(vline) is not None and x_range is None else [])
    y_lo, y_hi = _fixed_or_auto(y_range, ys, [])

    # layout
    legend_w = 0.0
    legend_names = [_truncate(s.name, 28) for s in ss]
    if show_legend and ss:
        legend_w = 28 + max(_text_width(n, 11) for n in legend_names)
    sub_lines = [] if not subtitle else ([subtitle] if isinstance(subtitle, str) else [str(x) for x in subtitle])
    ml, mr, mt, mb = 58.0, 16.0 + legend_w, (34.0 if title else 14.0) + 18.0 * len(sub_lines), 46.0
    pw, ph = max(10.0, width - ml - mr), max(10.0, height - mt - mb)
    sx = _Scale(x_lo, x_hi, ml, ml + pw)
    sy = _Scale(y_lo, y_hi, mt + ph, mt)

    out = [_open_svg(width, height, title or f"{y_label} vs {x_label}")]
    if title:
        out.append(f"<title>{escape(title)}</title>")
        out.append(_text(ml, 20, title, size=14, weight="600"))
    for k, line in enumerate(sub_lines):
        out.append(_text(ml, (38.0 if title else 18.0) + 18.0 * k, line, size=12, fill=TEXT, weight="500",
                         baseline=None))

    # grid + ticks
    xt = nice_ticks(x_lo, x_hi, 5)
    if x_integer:
        xt = [t for t in xt if abs(t - round(t)) < 1e-9]
        if len(xt) < 2:
            xt = [float(k) for k in range(math.ceil(x_lo), math.floor(x_hi) + 1)][:50]
    yt = nice_ticks(y_lo, y_hi, 5)
    g = ['<g class="grid" stroke="%s" stroke-width="1">' % GRID]
    for t in xt:
        g.append(f'<line x1="{_f(sx(t))}" y1="{_f(mt)}" x2="{_f(sx(t))}" y2="{_f(mt + ph)}"/>')
    for t in yt:
        g.append(f'<line x1="{_f(ml)}" y1="{_f(sy(t))}" x2="{_f(ml + pw)}" y2="{_f(sy(t))}"/>')
    g.append("</g>")
    out.extend(g)
    out.append(
        f'<rect x="{_f(ml)}" y="{_f(mt)}" width="{_f(pw)}" height="{_f(ph)}" fill="none" stroke="{AXIS}"/>'
    )
    ax = ['<g class="ticks">']
    for t in xt:
        ax.append(f'<line x1="{_f(sx(t))}" y1="{_f(mt + ph)}" x2="{_f(sx(t))}" y2="{_f(mt + ph + 4)}" stroke="{AXIS}"/>')
        ax.append(_text(sx(t), mt + ph + 16, _tick_label(t, xt), size=10.5, anchor="middle", fill=MUTED))
    for t in yt:
        ax.append(f'<line x1="{_f(ml - 4)}" y1="{_f(sy(t))}" x2="{_f(ml)}" y2="{_f(sy(t))}" stroke="{AXIS}"/>')
        ax.append(_text(ml - 7, sy(t) + 3.5, _tick_label(t, yt), size=10.5, anchor="end", fill=MUTED))
    ax.append("</g>")
    out.extend(ax)
    if x_label:
        out.append(_text(ml + pw / 2, height - 10, x_label, size=12, anchor="middle"))
    if y_label:
        out.append(_text(15, mt + ph / 2, y_label, size=12, anchor="middle", rotate=-90))

    clip_attr = line_clip = ""
    if clip:
        cid = f"premem-clip-{next(_ids)}"
        pad = marker_radius * 1.6 + 1.5 if markers else 1.0  # markers on the border stay whole
        out.append(
            f'<defs><clipPath id="{cid}"><rect x="{_f(ml - pad)}" y="{_f(mt - pad)}" width="{_f(pw + 2 * pad)}" '
            f'height="{_f(ph + 2 * pad)}"/></clipPath>'
            f'<clipPath id="{cid}-in"><rect x="{_f(ml)}" y="{_f(mt)}" width="{_f(pw)}" height="{_f(ph)}"/>'
            f"</clipPath></defs>"
        )
        clip_attr = f' clip-path="url(#{cid})"'
        line_clip = f' clip-path="url(#{cid}-in)"'

    if diagonal:
        a, b = max(x_lo, y_lo), min(x_hi, y_hi)
        if a < b:
            out.append(
                f'<line x1="{_f(sx(a))}" y1="{_f(sy(a))}" x2="{_f(sx(b))}" y2="{_f(sy(b))}" '
                f'stroke="#888" stroke-width="1.2" stroke-dasharray="5 4" class="diagonal"><title>y = x</title></line>'
            )

    vx = _num(vline)
    if vx is not None and x_lo <= vx <= x_hi:
        out.append(
            f'<line x1="{_f(sx(vx))}" y1="{_f(mt)}" x2="{_f(sx(vx))}" y2="{_f(mt + ph)}" stroke="#444" '
            f'stroke-width="1.2" stroke-dasharray="3 3" class="vline"/>'
        )
        if vline_label:
            right = sx(vx) + 4 + _text_width(vline_label, 11) < ml + pw
            out.append(_text(sx(vx) + (4 if right else -4), mt + ph - 7, vline_label, size=11,
                             anchor="start" if right else "end", halo=True))

    out.append(f'<g class="plot"{clip_attr}>')
    any_point = False
    for i, s in enumerate(ss):
        color = s.color or color_for(i)
        shape = _MARKERS[(i // len(PALETTE)) % len(_MARKERS)]
        pairs = [(_num(x), _num(y)) for x, y in _pairs(s.points)]
        tips = list(s.tooltips) if s.tooltips is not None else []
        body = [_band(s, pairs, sx, sy, color, line_clip)]
        if connect:
            d, pen = [], False
            for x, y in pairs:
                if x is None or y is None:
                    pen = False
                    continue
                d.append(("L" if pen else "M") + f"{_f(sx(x))},{_f(sy(y))}")
                pen = True
            if any(seg.startswith("L") for seg in d):
                dash = ' stroke-dasharray="6 3"' if s.dashed else ""
                body.append(
                    f'<path d="{"".join(d)}" fill="none" stroke="{escape(color)}" stroke-width="1.6" '
                    f'stroke-linejoin="round" stroke-linecap="round" opacity="0.85"{dash}{line_clip}/>'
                )
        body.append(_error_bars(s, pairs, sx, sy, color))
        if markers:
            for j, (x, y) in enumerate(pairs):
                if x is None or y is None:
                    continue
                tip = tips[j] if j < len(tips) and tips[j] is not None else _default_tip(s.name, x, y, x_label, y_label)
                m = _marker(shape, sx(x), sy(y), marker_radius, color, str(tip))
                body.append(f'<a href="{escape(s.href)}">{m}</a>' if s.href else m)
        if any(p[0] is not None and p[1] is not None for p in pairs):
            any_point = True
        out.append(f'<g class="series"><title>{escape(s.name)}</title>{"".join(body)}</g>')
    out.append("</g>")

    if not any_point:
        out.append(_text(ml + pw / 2, mt + ph / 2, empty_text, size=13, anchor="middle", fill=MUTED))

    if annotation:
        lines = [annotation] if isinstance(annotation, str) else list(annotation)
        for k, line in enumerate(lines):
            out.append(_text(ml + 8, mt + 18 + 16 * k, line, size=13, weight="600", halo=True))

    if show_legend and ss:
        lx = ml + pw + 14
        for i, (s, n) in enumerate(zip(ss, legend_names)):
            ly = mt + 8 + 16 * i
            if ly > height - 8:
                out.append(_text(lx, ly, f"… {len(ss) - i} more", size=11, fill=MUTED))
                break
            color = s.color or color_for(i)
            item = (
                f'<g><title>{escape(s.name)}</title><line x1="{_f(lx)}" y1="{_f(ly - 4)}" x2="{_f(lx + 16)}" '
                f'y2="{_f(ly - 4)}" stroke="{escape(color)}" stroke-width="3"'
                + (' stroke-dasharray="5 2"' if s.dashed else "")
                + "/>"
                + _text(lx + 21, ly, n, size=11)
                + "</g>"
            )
            out.append(f'<a href="{escape(s.href)}">{item}</a>' if s.href else item)

    out.append("</svg>")
    return "".join(out)


def _pairs(points: Any) -> list[tuple[Any, Any]]:
    out = []
    for p in points or []:
        try:
            x, y = p
        except (TypeError, ValueError):
            x, y = None, None
        out.append((x, y))
    return out


def _fixed_or_auto(rng: tuple[float, float] | None, values: list[float], include: list[Any]) -> tuple[float, float]:
    if rng is not None:
        lo, hi = _num(rng[0]), _num(rng[1])
        if lo is not None and hi is not None and hi > lo:
            return (lo, hi)
        if lo is not None and hi is not None and hi < lo:
            return (hi, lo)
    return axis_range(values, include=[v for v in include if _num(v) is not None])


def scatter_chart(
    series: Sequence[Series | Mapping[str, Any]],
    *,
    title: str = "",
    x_label: str = "",
    y_label: str = "",
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    diagonal: bool = False,
    annotation: str | Sequence[str] | None = None,
    width: float = 460,
    height: float = 420,
    connect: bool = True,
    legend: bool = False,
    marker_radius: float = 4.0,
    clip: bool = True,
    empty_text: str = "no data",
    subtitle: str | Sequence[str] | None = None,
) -> str:
    """Scatter plot of one or more series; points of a series are joined in the given order (unless
    ``connect`` is false).

    ``series``: :class:`Series` objects or dicts with keys ``name``, ``points`` (list of (x, y)),
    optional ``tooltips`` (one string per point), ``color``, ``dashed``.  Colours default to :data:`PALETTE`
    by series index.  ``x_range``/``y_range`` fix the axes (e.g. ``(0, 1)``); otherwise they are chosen from
    the data.  ``diagonal`` draws a dashed ``y = x`` line.  ``annotation`` (one string or several lines) is
    printed in the top-left corner of the plot; ``subtitle`` (one line or several), under the title, outside
    the plot.  A series' ``x_errors``/``y_errors`` are drawn as error bars.
    ``legend`` adds a legend to the right of the plot.
    """
    return _xy_chart(
        series, title=title, x_label=x_label, y_label=y_label, x_range=x_range, y_range=y_range,
        diagonal=diagonal, annotation=annotation, width=width, height=height, markers=True,
        marker_radius=marker_radius, connect=connect, show_legend=legend, vline=None, vline_label=None,
        clip=clip, empty_text=empty_text, subtitle=subtitle,
    )


def line_chart(
    series: Sequence[Series | Mapping[str, Any]],
    *,
    title: str = "",
    x_label: str = "",
    y_label: str = "",
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    vline: float | None = None,
    vline_label: str | None = None,
    annotation: str | Sequence[str] | None = None,
    width: float = 560,
    height: float = 340,
    markers: bool = True,
    legend: bool = True,
    marker_radius: float = 2.8,
    empty_text: str = "no data",
    x_integer: bool = False,
) -> str:
    """Line chart (e.g. a calibration curve: R² against p) with an optional dashed vertical marker at
    ``vline`` labelled ``vline_label``.  Lines are clipped to the plot area, so a fixed ``y_range`` can hide
    extreme values without distorting the rest.  ``x_integer`` keeps only whole-number ticks on x (epochs).
    Same ``series`` format as :func:`scatter_chart`; a series with ``band`` gets its ``y_errors`` as a shaded
    band."""
    return _xy_chart(
        series, title=title, x_label=x_label, y_label=y_label, x_range=x_range, y_range=y_range,
        diagonal=False, annotation=annotation, width=width, height=height, markers=markers,
        marker_radius=marker_radius, connect=True, show_legend=legend, vline=vline, vline_label=vline_label,
        clip=True, empty_text=empty_text, x_integer=x_integer,
    )


# --------------------------------------------------------------------------------------------- legend


def legend(items: Sequence[tuple[str, str]], *, columns: int | None = None, swatch: float = 12,
           width: float | None = None) -> str:
    """A standalone legend: ``items`` are (label, colour) pairs, drawn as square swatches in a grid
    (one row unless ``columns`` is given)."""
    items = [(str(lbl), str(col)) for lbl, col in items]
    if not items:
        return _open_svg(1, 1, "legend") + "</svg>"
    cols = columns or len(items)
    cell_w = max(_text_width(lbl, 12) for lbl, _ in items) + swatch + 22
    rows = math.ceil(len(items) / cols)
    w = width or cols * cell_w + 4
    h = rows * (swatch + 10) + 4
    out = [_open_svg(w, h, "legend")]
    for k, (lbl, col) in enumerate(items):
        r, c = divmod(k, cols)
        x, y = 2 + c * cell_w, 2 + r * (swatch + 10)
        out.append(
            f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(swatch)}" height="{_f(swatch)}" fill="{escape(col)}" '
            f'stroke="#bbb" stroke-width="0.5"/>'
        )
        out.append(_text(x + swatch + 6, y + swatch - 2, lbl, size=12))
    out.append("</svg>")
    return "".join(out)


# --------------------------------------------------------------------------------------------- heatmap


def heatmap(
    rows: Sequence[Sequence[Any]],
    *,
    categories: Sequence[tuple[str, str]],
    col_labels: Sequence[Any] | None = None,
    row_labels: Sequence[Any] | None = None,
    title: str = "",
    x_label: str = "",
    y_label: str = "",
    cell_width: float = 14,
    cell_height: float = 5,
    show_legend: bool = True,
    missing: tuple[str, str] = ("missing", "#ffffff"),
    tooltips: bool = True,
    empty_text: str = "no data",
) -> str:
    """Categorical heatmap: ``rows[i][j]`` is a category code (index into ``categories``, a list of
    (label, colour)) for row ``i`` and column ``j``.  Codes that are missing or out of range are drawn with
    ``missing``.  ``col_labels`` label the columns (every few, if crowded); ``row_labels`` are used in the
    per-cell tooltips ("row label · column label: category").  ``show_legend`` draws the categories below the
    grid.
    """
    rows = [list(r) if r is not None else [] for r in rows]
    n_rows = len(rows)
    n_cols = max((len(r) for r in rows), default=0)
    if col_labels is not None and len(col_labels) > n_cols:
        n_cols = len(col_labels)
    cats = [(str(lbl), str(col)) for lbl, col in categories]

    ml = 22.0 if y_label else 6.0
    mt = (26.0 if title else 4.0) + 14.0  # column labels above the grid
    grid_w, grid_h = n_cols * cell_width, n_rows * cell_height
    used_missing = False

    def code(v: Any) -> int | None:
        f = _num(v)
        if f is None or f != int(f) or not (0 <= int(f) < len(cats)):
            return None
        return int(f)

    for r in rows:
        for v in r:
            if code(v) is None:
                used_missing = True
        if len(r) < n_cols:
            used_missing = True

    legend_items = cats + ([missing] if used_missing else [])
    leg_h = 0.0
    leg_cols = 1
    if show_legend and legend_items:
        leg_cols = 2 if len(legend_items) > 2 else 1
        leg_h = 8 + math.ceil(len(legend_items) / leg_cols) * 16
    bottom = (18.0 if x_label else 4.0) + leg_h
    leg_cell_w = max((_text_width(l, 11) for l, _ in legend_items), default=0) + 22
    width = max(ml + grid_w + 6, (leg_cols * leg_cell_w + 8) if show_legend else 0,
                _text_width(title, 13) + 8 if title else 0, 60)
    height = mt + max(grid_h, 20) + bottom

    out = [_open_svg(width, height, title or "heatmap")]
    if title:
        out.append(f"<title>{escape(title)}</title>")
        out.append(_text(ml, 17, title, size=13, weight="600"))
    if y_label:
        out.append(_text(13, mt + max(grid_h, 20) / 2, y_label, size=11, anchor="middle", rotate=-90, fill=MUTED))

    if col_labels is not None and n_cols:
        every = max(1, math.ceil(14 / cell_width)) if cell_width < 14 else 1
        for j, lbl in enumerate(col_labels):
            if j % every == 0 or j == n_cols - 1:
                out.append(_text(ml + (j + 0.5) * cell_width, mt - 4, lbl, size=10, anchor="middle", fill=MUTED))

    if n_rows == 0 or n_cols == 0:
        out.append(_text(ml + 4, mt + 14, empty_text, size=12, fill=MUTED))
    else:
        out.append('<g class="cells" shape-rendering="crispEdges">')
        rl = list(row_labels) if row_labels is not None else None
        cl = list(col_labels) if col_labels is not None else None
        for i, r in enumerate(rows):
            y = mt + i * cell_height
            for j in range(n_cols):
                c = code(r[j]) if j < len(r) else None
                lbl, col = cats[c] if c is not None else missing
                x = ml + j * cell_width
                rect = f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(cell_width)}" height="{_f(cell_height)}" fill="{escape(col)}"'
                if tooltips:
                    rname = rl[i] if rl is not None and i < len(rl) else f"row {i + 1}"
                    cname = cl[j] if cl is not None and j < len(cl) else f"column {j + 1}"
                    out.append(f"{rect}><title>{escape(f'{rname} · {cname}: {lbl}')}</title></rect>")
                else:
                    out.append(rect + "/>")
        out.append("</g>")
        out.append(
            f'<rect x="{_f(ml)}" y="{_f(mt)}" width="{_f(grid_w)}" height="{_f(grid_h)}" fill="none" stroke="#bbb" '
            f'stroke-width="0.5"/>'
        )
    gy = mt + max(grid_h, 20)
    if x_label:
        out.append(_text(ml + grid_w / 2, gy + 13, x_label, size=11, anchor="middle", fill=MUTED))
    if show_legend and legend_items:
        ly = gy + (18 if x_label else 4) + 8
        for k, (lbl, col) in enumerate(legend_items):
            r, c = divmod(k, leg_cols)
            x, y = 4 + c * leg_cell_w, ly + r * 16
            out.append(
                f'<rect x="{_f(x)}" y="{_f(y)}" width="11" height="11" fill="{escape(col)}" stroke="#bbb" '
                f'stroke-width="0.5"/>'
            )
            out.append(_text(x + 16, y + 9.5, lbl, size=11))
    out.append("</svg>")
    return "".join(out)


# --------------------------------------------------------------------------------------------- bars


def bar_chart(
    labels: Sequence[Any],
    values: Sequence[Any],
    *,
    title: str = "",
    x_label: str = "",
    y_label: str = "",
    y_range: tuple[float, float] | None = None,
    colors: Sequence[str] | str | None = None,
    tooltips: Sequence[str] | None = None,
    value_labels: bool = True,
    width: float = 460,
    height: float = 300,
    empty_text: str = "no data",
) -> str:
    """Vertical bar chart, one bar per label (bars start at 0; negative values go down).  Missing values get
    no bar and a "–" label."""
    labels = [str(l) for l in labels]
    vals = [_num(v) for v in values]
    vals += [None] * (len(labels) - len(vals))
    vals = vals[: len(labels)]
    present = [v for v in vals if v is not None]
    y_lo, y_hi = _fixed_or_auto(y_range, present, [0.0])
    ml, mr, mt, mb = 58.0, 12.0, (34.0 if title else 14.0), 46.0
    pw, ph = max(10.0, width - ml - mr), max(10.0, height - mt - mb)
    sy = _Scale(y_lo, y_hi, mt + ph, mt)
    out = [_open_svg(width, height, title or "bar chart")]
    if title:
        out.append(f"<title>{escape(title)}</title>")
        out.append(_text(ml, 20, title, size=14, weight="600"))
    yt = nice_ticks(y_lo, y_hi, 5)
    for t in yt:
        out.append(f'<line x1="{_f(ml)}" y1="{_f(sy(t))}" x2="{_f(ml + pw)}" y2="{_f(sy(t))}" stroke="{GRID}"/>')
        out.append(_text(ml - 7, sy(t) + 3.5, _tick_label(t, yt), size=10.5, anchor="end", fill=MUTED))
    out.append(f'<rect x="{_f(ml)}" y="{_f(mt)}" width="{_f(pw)}" height="{_f(ph)}" fill="none" stroke="{AXIS}"/>')
    n = len(labels)
    if n == 0:
        out.append(_text(ml + pw / 2, mt + ph / 2, empty_text, size=13, anchor="middle", fill=MUTED))
    else:
        bw = pw / n
        zero = sy(min(max(0.0, y_lo), y_hi))
        step_lbl = max(1, math.ceil(n * 7 * 6 / pw)) if n > 1 else 1
        for i, (lbl, v) in enumerate(zip(labels, vals)):
            if isinstance(colors, str):
                col = colors
            elif colors:
                col = colors[i % len(colors)]
            else:
                col = PALETTE[0]
            cx = ml + (i + 0.5) * bw
            if v is not None:
                top = sy(min(max(v, y_lo), y_hi))
                y0, h = min(top, zero), abs(zero - top)
                tip = tooltips[i] if tooltips is not None and i < len(tooltips) else f"{lbl}: {v:.4g}"
                out.append(
                    f'<rect x="{_f(ml + i * bw + bw * 0.1)}" y="{_f(y0)}" width="{_f(bw * 0.8)}" height="{_f(h)}" '
                    f'fill="{escape(col)}"><title>{escape(tip)}</title></rect>'
                )
            if value_labels and n <= 20:
                vl = "–" if v is None else f"{v:.3g}"
                vy = (sy(v) - 4) if v is not None and v >= 0 else (zero - 4)
                out.append(_text(cx, max(mt + 10, vy), vl, size=10, anchor="middle", fill=MUTED))
            if i % step_lbl == 0:
                out.append(_text(cx, mt + ph + 15, _truncate(lbl, 14), size=10.5, anchor="middle", fill=MUTED))
    if x_label:
        out.append(_text(ml + pw / 2, height - 10, x_label, size=12, anchor="middle"))
    if y_label:
        out.append(_text(15, mt + ph / 2, y_label, size=12, anchor="middle", rotate=-90))
    out.append("</svg>")
    return "".join(out)


def histogram(
    values: Iterable[Any],
    *,
    bins: int = 10,
    value_range: tuple[float, float] | None = None,
    title: str = "",
    x_label: str = "",
    y_label: str = "count",
    color: str = PALETTE[0],
    width: float = 460,
    height: float = 300,
) -> str:
    """Histogram of the finite ``values`` in ``bins`` equal bins over ``value_range`` (default: data range);
    values outside the range are left out."""
    vals = [v for v in (_num(x) for x in values) if v is not None]
    bins = max(1, int(bins))
    if value_range is not None and _num(value_range[0]) is not None and _num(value_range[1]) is not None:
        lo, hi = float(value_range[0]), float(value_range[1])
    elif vals:
        lo, hi = min(vals), max(vals)
    else:
        lo, hi = 0.0, 1.0
    if hi <= lo:
        hi = lo + 1.0
    counts = [0] * bins
    for v in vals:
        if lo <= v <= hi:
            k = min(bins - 1, int((v - lo) / (hi - lo) * bins))
            counts[k] += 1
    w = (hi - lo) / bins
    edges = [lo + k * w for k in range(bins + 1)]
    labels = [f"{edges[k]:.3g}" for k in range(bins)]
    tips = [f"[{edges[k]:.4g}, {edges[k + 1]:.4g}{']' if k == bins - 1 else ')'}: {counts[k]}" for k in range(bins)]
    return bar_chart(labels, counts, title=title, x_label=x_label, y_label=y_label, colors=color, tooltips=tips,
                     width=width, height=height, value_labels=bins <= 20)


# --------------------------------------------------------------------------------------------- violins


@dataclass
class Violin:
    """One violin: the ``values`` (finite numbers are used, others skipped) and optional precomputed
    ``stats`` (``n``, ``median``, ``q1``, ``q3``, ``mean``) that take precedence for the drawn median and
    quartiles and the tooltip; ``tooltip`` replaces the default one.  ``mean_ci`` (low, high), when given,
    draws the mean as a small black diamond with its interval as a capped whisker beside the quartile bar."""

    values: Sequence[Any]
    stats: Mapping[str, Any] | None = None
    tooltip: str | None = None
    mean_ci: Sequence[Any] | None = None


def _kde(values: list[float], lo: float, hi: float, n_grid: int = 72) -> tuple[list[float], list[float]]:
    """A Gaussian kernel density of ``values`` on ``n_grid`` points, reflected at ``lo`` and ``hi``
    (accuracies pile up at 0 and 1; reflection keeps that mass inside the range), drawn from two bandwidths
    below the smallest value to two above the largest (as seaborn's ``cut=2``), within [lo, hi]."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    vs = sorted(values)
    iqr = vs[(3 * (n - 1)) // 4] - vs[(n - 1) // 4] if n > 1 else 0.0
    spread = min(sd, iqr / 1.34) if iqr > 0 else sd
    span = hi - lo
    h = 0.9 * spread * n ** -0.2 if spread > 0 else 0.0
    h = min(max(h, 0.04 * span), 0.15 * span)
    g0, g1 = max(lo, vs[0] - 2 * h), min(hi, vs[-1] + 2 * h)
    grid = [g0 + (g1 - g0) * k / (n_grid - 1) for k in range(n_grid)]
    dens = []
    for y in grid:
        d = 0.0
        for v in values:
            for c in (v, 2 * lo - v, 2 * hi - v):
                z = (y - c) / h
                if z * z < 50:
                    d += math.exp(-0.5 * z * z)
        dens.append(d)
    return grid, dens


def violin_chart(
    categories: Sequence[Any],
    groups: Sequence[tuple[str, str, Mapping[Any, Violin]]],
    *,
    title: str = "",
    x_label: str = "",
    y_label: str = "",
    y_range: tuple[float, float] = (0.0, 1.0),
    width: float = 900,
    height: float = 420,
    legend: bool = True,
    empty_text: str = "no data",
) -> str:
    """Grouped violin plot: for each of ``categories`` (x) one violin per group in ``groups``, a list of
    (name, colour, {category: :class:`Violin`}).  Each violin is a reflected Gaussian kernel density of its
    values scaled to its own widest point, with the interquartile range as a dark bar, the median as a white
    dot, and ``n = ...`` under it.  Values outside ``y_range`` are clipped to it."""
    cats = [str(c) for c in categories]
    groups = [(str(n), str(c), dict(d) if isinstance(d, Mapping) else {}) for n, c, d in groups]
    y_lo, y_hi = _fixed_or_auto(y_range, [], [])
    names = [_truncate(n, 32) for n, _, _ in groups]
    legend_rows: list[list[int]] = [[]]
    if legend and groups:
        avail, used = width - 58 - 16, 0.0
        for i, n in enumerate(names):
            w = 28 + _text_width(n, 11.5) + 14
            if legend_rows[-1] and used + w > avail:
                legend_rows.append([])
                used = 0.0
            legend_rows[-1].append(i)
            used += w
    n_leg = len(legend_rows) if legend and groups else 0
    ml, mr, mb = 58.0, 16.0, 62.0
    mt = (34.0 if title else 12.0) + 18.0 * n_leg + (4.0 if n_leg else 0.0)
    pw, ph = max(10.0, width - ml - mr), max(10.0, height - mt - mb)
    sy = _Scale(y_lo, y_hi, mt + ph, mt)

    out = [_open_svg(width, height, title or "violin chart")]
    if title:
        out.append(f"<title>{escape(title)}</title>")
        out.append(_text(ml, 20, title, size=14, weight="600"))
    if n_leg:
        y0 = (34.0 if title else 12.0) + 8
        for r, row in enumerate(legend_rows):
            x = ml
            for i in row:
                _, col, _ = groups[i]
                ly = y0 + 18 * r
                out.append(
                    f'<g class="legend-item"><title>{escape(groups[i][0])}</title>'
                    f'<rect x="{_f(x)}" y="{_f(ly - 9)}" width="20" height="11" rx="2" fill="{escape(col)}" '
                    f'fill-opacity="0.45" stroke="{escape(col)}"/>{_text(x + 26, ly, names[i], size=11.5)}</g>'
                )
                x += 28 + _text_width(names[i], 11.5) + 14

    yt = nice_ticks(y_lo, y_hi, 5)
    out.append(f'<g class="grid" stroke="{GRID}" stroke-width="1">')
    for t in yt:
        out.append(f'<line x1="{_f(ml)}" y1="{_f(sy(t))}" x2="{_f(ml + pw)}" y2="{_f(sy(t))}"/>')
    out.append("</g>")
    for t in yt:
        out.append(_text(ml - 7, sy(t) + 3.5, _tick_label(t, yt), size=10.5, anchor="end", fill=MUTED))
    out.append(f'<rect x="{_f(ml)}" y="{_f(mt)}" width="{_f(pw)}" height="{_f(ph)}" fill="none" stroke="{AXIS}"/>')
    if y_label:
        out.append(_text(15, mt + ph / 2, y_label, size=12, anchor="middle", rotate=-90))
    if x_label:
        out.append(_text(ml + pw / 2, height - 10, x_label, size=12, anchor="middle"))

    n_cat, n_grp = len(cats), len(groups)
    drawn = False
    if n_cat and n_grp:
        cw = pw / n_cat
        vw = cw * 0.86 / n_grp
        half = vw * 0.46
        for j, cat in enumerate(cats):
            x0 = ml + j * cw
            if j:
                out.append(f'<line x1="{_f(x0)}" y1="{_f(mt)}" x2="{_f(x0)}" y2="{_f(mt + ph)}" stroke="{GRID}"/>')
            out.append(_text(x0 + cw / 2, mt + ph + 30, cat, size=11.5, anchor="middle"))
            for g, (gname, col, data) in enumerate(groups):
                cx = x0 + cw * 0.07 + (g + 0.5) * vw
                v = data.get(cat)
                if v is None:
                    v = next((vv for kk, vv in data.items() if str(kk) == cat), None)
                vals = [] if v is None else [f for f in (_num(x) for x in (v.values or [])) if f is not None]
                vals = [min(max(f, y_lo), y_hi) for f in vals]
                st = dict(v.stats or {}) if v is not None else {}
                n = st.get("n")
                n = int(n) if _num(n) is not None else len(vals)

                def stat(key: str, fn) -> float | None:
                    f = _num(st.get(key))
                    return f if f is not None else (fn() if vals else None)

                srt = sorted(vals)

                def qt(p: float) -> float:
                    pos = p * (len(srt) - 1)
                    lo_i = math.floor(pos)
                    hi_i = min(lo_i + 1, len(srt) - 1)
                    return srt[lo_i] + (srt[hi_i] - srt[lo_i]) * (pos - lo_i)

                med = stat("median", lambda: qt(0.5))
                q1 = stat("q1", lambda: qt(0.25))
                q3 = stat("q3", lambda: qt(0.75))
                mean = stat("mean", lambda: sum(vals) / len(vals))
                tip = v.tooltip if v is not None and v.tooltip else (
                    f"{gname} · {cat}\nn = {n}\nmedian {_fmt3(med)} (quartiles {_fmt3(q1)} to {_fmt3(q3)})"
                    f"\nmean {_fmt3(mean)}")
                body = []
                if vals:
                    grid, dens = _kde(vals, y_lo, y_hi)
                    top = max(dens) or 1.0
                    right = [f"{_f(cx + half * d / top)},{_f(sy(y))}" for y, d in zip(grid, dens)]
                    left = [f"{_f(cx - half * d / top)},{_f(sy(y))}" for y, d in zip(reversed(grid), reversed(dens))]
                    body.append(
                        f'<path class="violin-body" d="M{"L".join(right + left)}Z" fill="{escape(col)}" '
                        f'fill-opacity="0.4" stroke="{escape(col)}" stroke-width="1.2"/>'
                    )
                    drawn = True
                if q1 is not None and q3 is not None:
                    body.append(
                        f'<line x1="{_f(cx)}" y1="{_f(sy(min(max(q1, y_lo), y_hi)))}" x2="{_f(cx)}" '
                        f'y2="{_f(sy(min(max(q3, y_lo), y_hi)))}" stroke="#333" stroke-width="4" '
                        f'stroke-linecap="round" opacity="0.75"/>'
                    )
                ci = _bounds([v.mean_ci] if v is not None else None, 0)
                if mean is not None and (ci[0] is not None or ci[1] is not None):
                    mx = cx + min(7.0, half * 0.6)
                    ys_ = [sy(min(max(b if b is not None else mean, y_lo), y_hi)) for b in (ci[0], mean, ci[1])]
                    body.append(
                        f'<g class="mean-ci" stroke="#111" stroke-width="1.1" fill="none">'
                        f'<path d="M{_f(mx)},{_f(ys_[0])}V{_f(ys_[2])}M{_f(mx - 2.5)},{_f(ys_[0])}H{_f(mx + 2.5)}'
                        f'M{_f(mx - 2.5)},{_f(ys_[2])}H{_f(mx + 2.5)}"/>'
                        f'<path d="M{_f(mx)},{_f(ys_[1] - 3)}L{_f(mx + 3)},{_f(ys_[1])}L{_f(mx)},{_f(ys_[1] + 3)}'
                        f'L{_f(mx - 3)},{_f(ys_[1])}Z" fill="#111" stroke="none"/></g>'
                    )
                if med is not None:
                    body.append(
                        f'<circle class="pt" cx="{_f(cx)}" cy="{_f(sy(min(max(med, y_lo), y_hi)))}" r="3.2" '
                        f'fill="#fff" stroke="#333" stroke-width="1.2"/>'
                    )
                # an invisible hit area so the whole slot answers to the pointer, even with n = 0
                body.insert(0, f'<rect x="{_f(cx - vw / 2)}" y="{_f(mt)}" width="{_f(vw)}" height="{_f(ph)}" '
                               f'fill="#fff" fill-opacity="0"/>')
                out.append(f'<g class="violin"><title>{escape(tip)}</title>{"".join(body)}'
                           f'{_text(cx, mt + ph + 14, f"n={n}", size=9.5, anchor="middle", fill=MUTED)}</g>')
    if not drawn:
        out.append(_text(ml + pw / 2, mt + ph / 2, empty_text, size=13, anchor="middle", fill=MUTED))
    out.append("</svg>")
    return "".join(out)


def _fmt3(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"
