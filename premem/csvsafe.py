"""CSV cells a spreadsheet will not run: the one place premem neutralises formula injection (OWASP, "CSV
Injection"), for every CSV file it writes (the report's ``data/*.csv``, ``premem export --format csv``).

A text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to Excel,
LibreOffice and Google Sheets, so a dataset's question, a run's or a model's name or an example id such as
``=HYPERLINK(...)`` could run when the file is opened. Such a cell is written with a single quote in front
(``'=HYPERLINK(...)``), which spreadsheets show as text. Numbers stay numbers: a cell that reads as a plain
decimal number (``-0.5``, ``+3``, ``-1e-05``) is written as it is, and so is every numeric column.

The quoting is reversible, and `premem analyze` reverses it when it reads a CSV file: a cell that starts with a
single quote followed by what would have been quoted (``'=x``, ``'-abc``, ``''=x``) loses that one quote. To
keep that exact, a text cell that already starts with quotes before a formula character gets one more
(``'=x`` is written ``''=x``), so every value reads back as it was written.
"""
from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

FORMULA_START = "=+-@\t\r"
_NEEDS = r"^'*[=+\-@\t\r]"  # quotes (already there), then a character that starts a formula
_NUMBER = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_NEEDS_RE, _NUMBER_RE = re.compile(_NEEDS), re.compile(_NUMBER[1:-1])  # fullmatch: no trailing newline


def needs_quote(text: str) -> bool:
    """True when `text`, written as a CSV cell, must get a leading single quote: it starts (after any quotes)
    with a formula character and is not a plain number."""
    return bool(_NEEDS_RE.match(text)) and not _NUMBER_RE.fullmatch(text)


def safe_cell(value: Any) -> Any:
    """`value` ready for a CSV cell: text that a spreadsheet would run as a formula with a single quote in
    front; anything else (numbers, None, other text) unchanged."""
    if isinstance(value, str) and needs_quote(value):
        return "'" + value
    return value


def unquote_cell(text: str) -> str:
    """The value :func:`safe_cell` made `text` from (`text` itself when safe_cell would not have quoted it)."""
    if text.startswith("'") and needs_quote(text[1:]):
        return text[1:]
    return text


def _strings(col: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """`col` as strings when it holds text (plain, large or dictionary-encoded), else None."""
    t = col.type
    if pa.types.is_dictionary(t) and (pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type)):
        return pc.cast(col, t.value_type)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return col
    return None


def _is(col, pattern: str) -> pa.ChunkedArray:
    return pc.fill_null(pc.match_substring_regex(col, pattern), False)


def safe_table(table: pa.Table) -> pa.Table:
    """`table` with :func:`safe_cell` applied to every text cell (vectorised); other columns unchanged."""
    for i, name in enumerate(table.column_names):
        col = _strings(table.column(i))
        if col is None:
            continue
        mask = pc.and_(_is(col, _NEEDS), pc.invert(_is(col, _NUMBER)))
        if pc.any(mask).as_py():
            quoted = pc.binary_join_element_wise(pa.scalar("'", col.type), col, pa.scalar("", col.type))
            table = table.set_column(i, name, pc.if_else(mask, quoted, col))
    return table


def unquote_table(table: pa.Table) -> pa.Table:
    """`table` with :func:`unquote_cell` applied to every text cell (for a CSV file premem may have written)."""
    for i, name in enumerate(table.column_names):
        col = _strings(table.column(i))
        if col is None:
            continue
        rest = pc.utf8_slice_codeunits(col, 1)
        mask = pc.and_(pc.and_(_is(col, "^'"), _is(rest, _NEEDS)), pc.invert(_is(rest, _NUMBER)))
        if pc.any(mask).as_py():
            table = table.set_column(i, name, pc.if_else(mask, rest, col))
    return table
