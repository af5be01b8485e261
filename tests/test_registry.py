import pytest

from premem.registry import Registry, UnknownName


def test_registry_did_you_mean():
    r = Registry("dataset")
    r.register("arithmetic", 1)
    assert r.get("arithmetic") == 1
    with pytest.raises(UnknownName) as e:
        r.get("arithmetc")
    assert 'did you mean "arithmetic"' in str(e.value) and "known: arithmetic" in str(e.value)
    with pytest.raises(ValueError):
        r.register("arithmetic", 2)


def test_suggestions_do_bounded_work_however_many_names_and_lookups(monkeypatch):
    import difflib

    from premem.registry import Suggestions

    calls = []
    real = difflib.get_close_matches
    monkeypatch.setattr(difflib, "get_close_matches", lambda *a, **k: calls.append(1) or real(*a, **k))
    hint = Suggestions(["tiny", "llama", "gemma"], limit=3)
    assert hint("tinny") == ' (did you mean "tiny"?)' and hint("lama") == ' (did you mean "llama"?)'
    assert hint("tinny") == ' (did you mean "tiny"?)' and len(calls) == 2  # asked again: remembered
    assert hint("zzz") == "" and hint("gema") == ""  # past the limit of distinct names: no more suggestions
    assert len(calls) == 3
    many = Suggestions([f"model{i}" for i in range(5000)])  # too many names to compare each lookup with all
    assert many("MODEL42") == ' (did you mean "model42"?)' and many("modle42") == "" and len(calls) == 3
