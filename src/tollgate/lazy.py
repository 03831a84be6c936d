"""Modules loaded on first attribute access, so a command pays only for the parts it uses.

`catalog = lazy_module("tollgate.catalog")` binds a name now and imports the module the first time
something is looked up on it. Start-up time is the reason: every TAB press runs the whole program.

The load is an ordinary `importlib.import_module`, not importlib's LazyLoader. LazyLoader turns the
placeholder into the module before running its code, so a Ctrl-C in the middle of that first run left
a half-built module for the rest of the process ("module has no attribute 'record'"). An ordinary
import that fails is dropped from `sys.modules` by Python, and the next look-up simply tries again.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any


class _ModuleOnFirstUse(ModuleType):
    """Stands for the named module; every look-up, assignment and deletion goes to the real one."""

    def _target(self) -> ModuleType:
        name = self.__name__
        return sys.modules.get(name) or importlib.import_module(name)

    @property
    def __dict__(self) -> dict[str, Any]:  # type: ignore[override]  # what vars() and monkeypatch read
        return self._target().__dict__

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._target(), attr)

    def __setattr__(self, attr: str, value: Any) -> None:
        setattr(self._target(), attr, value)

    def __delattr__(self, attr: str) -> None:
        delattr(self._target(), attr)


def lazy_module(name: str) -> ModuleType:
    return sys.modules.get(name) or _ModuleOnFirstUse(name)
