"""Our stages as benchmarked: each variant's parameter overrides over the declared defaults, and its clip roles."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from restoration.bench import corpus as C
from restoration.bench.corpus import CHAIN

OURS = "filmrestore"


# Our stage as benchmarked: parameter overrides on top of the declared defaults (only names the stage declares
# are passed), and the clip roles a variant runs on (None: all).
@dataclass(frozen=True)
class Variant:
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    roles: tuple[str, ...] | None = None
    note: str = ""


OUR_VARIANTS: dict[str, tuple[Variant, ...]] = {
    "dust": (Variant(OURS),),
    "stabilize": (Variant(OURS),),
    "deflicker": (Variant(OURS),),
    "denoise": (Variant(OURS, {"grain": "remove"}, note="grain=remove (the PSNR target)"),
                Variant(f"{OURS}-regrain", {"grain": "regrain"}, ("grain",), note="grain=regrain (grain match)")),
    "color": (Variant(OURS),),
    CHAIN: (Variant(OURS, note="every implemented stage but sr"),),
    "sr": (Variant(OURS, {"mode": "fidelity"}, note="mode=fidelity"),
           Variant(f"{OURS}-perceptual", {"mode": "perceptual", "temporal": False}, note="mode=perceptual"),
           Variant(f"{OURS}-perceptual-temporal", {"mode": "perceptual", "temporal": True}, ("sr-video",),
                   note="mode=perceptual, temporal=on")),
}


def our_params(stage: str, variant: Variant, clip: C.Clip | None = None) -> dict[str, Any]:
    """The variant's overrides limited to the parameters the stage declares, resolved over its defaults."""
    from restoration.stages import stage_class

    declared = stage_class(stage).params
    wanted = dict(variant.params)
    if stage == "sr" and clip is not None:
        wanted["scale"] = clip.scale
    return declared.resolve({k: v for k, v in wanted.items() if k in declared.names()})
