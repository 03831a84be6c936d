"""tollgate.lazy: a module bound now, imported on first use, and whole even if that first import is cut short."""

from __future__ import annotations

import sys
import textwrap

import pytest

from tollgate.lazy import lazy_module

# A module whose first run is cut short by Ctrl-C half-way through: `before` exists by then, `record` not yet.
INTERRUPTED_ONCE = textwrap.dedent(
    """
    import pathlib
    before = "defined before the interrupt"
    marker = pathlib.Path(__file__).with_suffix(".ran")
    if not marker.exists():
        marker.touch()
        raise KeyboardInterrupt
    def record():
        return "recorded"
    """
)


@pytest.fixture
def module_named(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(name: str, source: str) -> str:
        (tmp_path / f"{name}.py").write_text(source)
        monkeypatch.delitem(sys.modules, name, raising=False)
        return name

    yield write


def test_nothing_is_imported_until_an_attribute_is_looked_up(module_named):
    name = module_named("tollgate_lazy_plain", "value = 42\n")
    module = lazy_module(name)
    assert name not in sys.modules
    assert module.value == 42
    assert sys.modules[name].value == 42


def test_a_first_load_cut_short_by_ctrl_c_is_retried_whole_on_the_next_look_up(module_named):
    name = module_named("tollgate_lazy_interrupted", INTERRUPTED_ONCE)
    module = lazy_module(name)
    with pytest.raises(KeyboardInterrupt):
        module.record
    assert name not in sys.modules  # Python dropped the half-built module
    assert module.record() == "recorded"
    assert module.before == "defined before the interrupt"


def test_assignments_through_the_placeholder_reach_the_real_module(module_named):
    name = module_named("tollgate_lazy_patched", "LIMIT = 3\ndef limit():\n    return LIMIT\n")
    module = lazy_module(name)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "LIMIT", 7)
        assert module.limit() == 7 and sys.modules[name].LIMIT == 7
    assert module.limit() == 3


def test_an_already_imported_module_is_returned_as_it_is():
    import tollgate.money

    assert lazy_module("tollgate.money") is tollgate.money


def test_a_misspelt_module_fails_on_first_use_with_an_import_error():
    module = lazy_module("tollgate.no_such_module")
    with pytest.raises(ModuleNotFoundError):
        module.anything
