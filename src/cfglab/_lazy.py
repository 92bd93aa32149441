"""PEP 562 lazy attributes for package ``__init__`` modules (docs/performance.md, start-up).

A package lists its public names by defining module; nothing heavy (torch, scipy) is imported
until a name is first used, so ``cfglab --help`` and the closed forms start in a fraction of
a second.  Subpackages (``cfglab.lab``) load on first attribute access too.
"""

from __future__ import annotations

import importlib
import sys
import types

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: dict[str, tuple[str, ...]]):
    """``(__getattr__, __dir__)`` for ``package``; ``exports`` maps a module to the names it defines."""
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str):
        if name.startswith("__"):  # probes such as __wrapped__ never name a submodule
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        if name in where:
            value = getattr(importlib.import_module(where[name]), name)
        else:
            try:
                value = importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as err:
                if err.name != f"{package}.{name}":
                    raise
                raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        setattr(sys.modules[package], name, value)  # cache: later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    class _Package(types.ModuleType):
        def __setattr__(self, name, value):
            # importing a submodule binds it on its package; where the package exports a
            # same-named object (cfglab.lab.simulate), keep that object, as an eager import did
            if name in where and isinstance(value, types.ModuleType) and value.__name__ == f"{package}.{name}":
                value = getattr(value, name)
            super().__setattr__(name, value)

    sys.modules[package].__class__ = _Package
    return __getattr__, __dir__
