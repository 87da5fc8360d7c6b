"""pulumi-azure-native's packages, each entered with only the modules the program uses.

A package's `__init__` imports every module it has (network: 291 of them) and the program uses a
handful from nine packages: importing them whole cost 0.8 s of every preview and `pulumi up` on
the 2-core machine, against 0.35 s this way. `package()` makes the package module without running
its `__init__`, imports the modules named, and puts their public names on it as the `__init__`
would. Anything else asked of the package (a resource reference the engine hands back, a type
from a module not named) runs the real `__init__` at that moment: nothing behaves differently,
it is only paid for when needed.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

ROOT = "pulumi_azure_native"
SHARED = ("_enums", "_inputs")  # every resource module of a package imports these two


def package(name: str, *modules: str) -> types.ModuleType:
    """`pulumi_azure_native.<name>` with `modules` (file names, as `private_endpoint`) loaded."""
    import pulumi_azure_native as root

    full = f"{ROOT}.{name}"
    found = sys.modules.get(full)
    # The root package puts a lazy placeholder there; touching any attribute of it would run the
    # whole `__init__`. `type()` does not touch it.
    if type(found) is not types.ModuleType:
        sys.modules.pop(full, None)
        found = _partial(full)
        sys.modules[full] = found
        setattr(root, name, found)
    if "__getattr__" in found.__dict__:  # still partial: add what is asked for
        for module in modules:
            loaded = importlib.import_module(f"{full}.{module}")
            shared = [sys.modules[f"{full}.{s}"] for s in SHARED if f"{full}.{s}" in sys.modules]
            for source in (loaded, *shared):
                for public in getattr(source, "__all__", ()):
                    found.__dict__.setdefault(public, getattr(source, public))
    return found


def _partial(full: str) -> types.ModuleType:
    spec = importlib.util.find_spec(full)
    module = importlib.util.module_from_spec(spec)

    def whole(attribute: str):
        if attribute.startswith("__") and attribute != "__all__":
            raise AttributeError(attribute)
        if importlib.util.find_spec(f"{full}.{attribute}") is not None:
            # a module of the package (`from . import outputs`): the import system loads it alone
            raise AttributeError(attribute)
        del module.__dict__["__getattr__"]  # once: the package's own `__init__` now defines the rest
        spec.loader.exec_module(module)
        return getattr(module, attribute)

    module.__getattr__ = whole
    return module
