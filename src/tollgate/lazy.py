"""Modules loaded on first attribute access, so a command pays only for the parts it uses.

`catalog = lazy_module("tollgate.catalog")` binds a name now and runs the module's code the first
time something is looked up on it (importlib's own LazyLoader). Start-up time is the reason: every
TAB press runs the whole program.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_module(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"No module named {name!r}")
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
