"""The stage registry: one package per stage, found by name in the fixed order; other stages may register too.

The registry imports a stage's package only when asked for it, and no stage package imports the registry: each one
depends on the core (`restoration.stage`, `params`, `flow`, ...) alone.
"""

from __future__ import annotations

from importlib import import_module

from ..errors import ParamError
from ..stage import STAGE_ORDER, Stage

# Where each built-in stage lives: restoration.stages.<name>, exporting this Stage class.
BUILTIN_STAGES: dict[str, str] = {
    "dust": "DustRepair",
    "stabilize": "GateWeave",
    "deflicker": "Deflicker",
    "denoise": "GrainDenoise",
    "color": "FadeCorrection",
    "sr": "SuperResolution",
}

_REGISTRY: dict[str, type[Stage]] = {}
_builtins_loaded = False


def register(stage_class: type[Stage]) -> type[Stage]:
    """Make a stage known under its name (one of STAGE_ORDER), replacing the built-in one."""
    if stage_class.name not in STAGE_ORDER:
        raise ValueError(f"stage name {stage_class.name!r} is not in the fixed order {STAGE_ORDER}")
    _REGISTRY[stage_class.name] = stage_class
    return stage_class


def _load_builtin_stages() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    for name, class_name in BUILTIN_STAGES.items():
        _REGISTRY.setdefault(name, getattr(import_module(f"{__name__}.{name}"), class_name))
    _builtins_loaded = True


def stage_class(name: str) -> type[Stage]:
    """The registered class for `name`; ParamError names the unknown stage."""
    _load_builtin_stages()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ParamError(f"stage {name}", f"unknown stage (known: {', '.join(STAGE_ORDER)})") from None


def stage_classes() -> list[type[Stage]]:
    """Every registered stage in the fixed order."""
    _load_builtin_stages()
    return [_REGISTRY[n] for n in STAGE_ORDER if n in _REGISTRY]


def implemented_stage_names() -> list[str]:
    return [cls.name for cls in stage_classes() if cls.implemented]
