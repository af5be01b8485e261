"""docs/SPEC.md is rendered from the spec's pydantic models (premem/spec/doc.py), and kept in step with them."""
from __future__ import annotations

import typing
from pathlib import Path

from pydantic import BaseModel

from premem import cli

from premem.spec import doc as spec_doc
from premem.spec.schema import Spec

SPEC_MD = Path(__file__).resolve().parents[2] / "docs" / "SPEC.md"


def test_docs_spec_md_is_the_fresh_render():
    # fails when a field, default or description in premem/spec/schema.py changed without the page
    assert SPEC_MD.read_text() == spec_doc.render(), (
        f"docs/SPEC.md is stale: regenerate it with `{spec_doc.REGENERATE}`")


def test_render_is_deterministic():
    assert spec_doc.render() == spec_doc.render()


def test_every_top_level_field_appears_in_order():
    text = spec_doc.render()
    top = text.split("## Top level", 1)[1].split('<a id="', 1)[0]
    at = [top.index(f"| `{name}` |") for name in Spec.model_fields]
    assert at == sorted(at)
    assert spec_doc.top_level_fields() == list(Spec.model_fields)


def _models(cls: type[BaseModel], seen: set) -> set:
    for f in cls.model_fields.values():
        for m in spec_doc.models_in(f.annotation):
            if m not in seen:
                seen.add(m)
                _models(m, seen)
    return seen


def test_every_section_and_field_of_every_model_is_documented():
    text = spec_doc.render()
    for cls in _models(Spec, set()):
        assert f'<a id="{spec_doc.anchor(cls)}"></a>' in text, cls.__name__
        section = text.split(f'<a id="{spec_doc.anchor(cls)}"></a>', 1)[1].split('<a id="', 1)[0]
        for name, f in cls.model_fields.items():
            assert f"| `{name}` |" in section, f"{cls.__name__}.{name}"
            assert not f.description or f.description.split()[0] in section


def test_sections_follow_the_spec_order():
    text = spec_doc.render()
    tops = [n for n, f in Spec.model_fields.items() if spec_doc.models_in(f.annotation)]
    at = [text.index(f"## `{n}") for n in tops]
    assert at == sorted(at)


def test_types_defaults_and_enums():
    text = spec_doc.render()
    assert "| `optimizer` | `adamw` or `adam` | `\"adamw\"` |" in text
    assert "| `name` | str (non-empty) | **required** |" in text
    assert "| `layers` | int (1 to 48) | `4` |" in text
    assert "| `stop` | str (non-empty) | `\"\\nDone.\"` |" in text
    assert "list of [RunSelector](#runselector)" in text
    # no bare `|` inside a cell: every table row has exactly the four cells
    for line in text.splitlines():
        if line.startswith("| `"):
            assert line.replace("\\|", "").count("|") == 5, line


def test_notes_belong_to_documented_models():
    documented = _models(Spec, set())
    assert set(spec_doc.NOTES) <= documented


def test_schema_markdown_prints_the_page(capsys):
    assert cli.main(["schema", "--markdown"]) == cli.EXIT_OK
    assert capsys.readouterr().out == spec_doc.render()


def test_type_rendering():
    assert spec_doc.render_type(typing.Literal["a", "b"]) == "`a` or `b`"
    assert spec_doc.render_type(list[int] | None) == "list of int or null"
    assert spec_doc.render_type(tuple[float, float]) == "[float, float]"
