"""The kernel's own SWML verbs, found in the modules of this package: one verb, one module.

Theory of operation: a module of `mediaserver.kernel.verbs` that exports `VERB` (a
`KernelVerb`, context.py) or `VERBS` (several, e.g. `tap` and `stop_tap` sharing their state)
declares each verb whole: its effect dataclass, its builder and its handler. `kernel_verbs()`
imports every module of the package (pkgutil) and collects those declarations; from them come
`kernel_builders()`, which the kernel's `start_call` and the test harnesses hand to
`Interpreter(..., builders=...)` (merged over swml's own `BUILDERS`), and `kernel_handlers()`,
which the executor merges into its `HANDLERS`. So adding a verb is adding one module here and
nothing else (docs/architecture.md "Add a SWML verb").

Why discovery rather than one `KERNEL_VERBS` list: with a list, a new verb is a module plus a
line in the list, two places, and a module whose line was forgotten is silently `Unsupported`.
Discovery makes the module itself the registration. Its two risks are checked here, at the first
call (when the executor is imported), and by tests/unit/test_kernel_verbs.py: two modules
declaring the same verb name (a `ValueError` naming both), or one declaring a name that is not a
schema verb or is a control verb the interpreter runs itself. Modules that export neither name
(context, registry, the handlers still wired by the executor's table) are simply not verbs.
The swml package never imports this: the interpreter stays a pure core given its builders.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from mediaserver.kernel.verbs.context import Handler, KernelVerb
from mediaserver.swml.builders import Builder
from mediaserver.swml.document import VERBS as SCHEMA_VERBS
from mediaserver.swml.interpreter import CONTROL_VERBS

__all__ = ["kernel_builders", "kernel_handlers", "kernel_verbs", "verb_modules"]

PACKAGE = "mediaserver.kernel.verbs"


def verb_modules() -> dict[str, tuple[KernelVerb, ...]]:
    """Each module of the package that declares verbs (by full name), with its declarations."""
    package = importlib.import_module(PACKAGE)
    found: dict[str, tuple[KernelVerb, ...]] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{PACKAGE}.{info.name}")
        declared: list[KernelVerb] = []
        if hasattr(module, "VERB"):
            declared.append(module.VERB)
        declared.extend(getattr(module, "VERBS", ()))
        if declared:
            found[module.__name__] = tuple(declared)
    return found


@cache
def kernel_verbs() -> tuple[KernelVerb, ...]:
    """Every verb the package declares, checked: KernelVerb instances, schema names, each once."""
    owner: dict[str, str] = {}
    verbs: list[KernelVerb] = []
    for module, declared in verb_modules().items():
        for verb in declared:
            if not isinstance(verb, KernelVerb):
                raise TypeError(f"{module}: VERB/VERBS must hold KernelVerb, got {verb!r}")
            if verb.name not in SCHEMA_VERBS or verb.name in CONTROL_VERBS:
                raise ValueError(f"{module}: {verb.name!r} is not a schema verb the kernel can execute")
            if verb.name in owner:
                raise ValueError(f"SWML verb {verb.name!r} is declared twice: {owner[verb.name]} and {module}")
            owner[verb.name] = module
            verbs.append(verb)
    return tuple(verbs)


def kernel_builders() -> dict[str, Builder]:
    """For `Interpreter(..., builders=kernel_builders())`."""
    return {verb.name: verb.build for verb in kernel_verbs()}


def kernel_handlers() -> dict[type, Handler]:
    """Effect type -> handler; verbs may share an effect (denoise/stop_denoise) only with one handler."""
    handlers: dict[type, Handler] = {}
    for verb in kernel_verbs():
        if handlers.setdefault(verb.effect, verb.handle) is not verb.handle:
            raise ValueError(f"effect {verb.effect.__name__} has two handlers (verb {verb.name!r})")
    return handlers
