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
