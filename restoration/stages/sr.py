"""Stage `sr`: AI super-resolution (placeholder until its issue lands)."""

from ..params import Param, declare
from ..stage import PlaceholderStage, register


@register
class SuperResolution(PlaceholderStage):
    name = "sr"
    title = "Super-resolution"
    summary = "Tiled super-resolution with fidelity and perceptual modes."
    params = declare(
        Param("model", "str", "auto", "Model name or path to a .pth/.safetensors ESRGAN-family file."),
        Param("scale", "int", 2, "Upscaling factor (ignored when a target size is given).", minimum=2, maximum=4),
        Param("target", "str", "", "Target size: WxH, 2k, uhd, 4k-dci (empty: use scale)."),
        Param("mode", "choice", "fidelity", "fidelity invents nothing; perceptual is for presentation copies.",
              choices=("fidelity", "perceptual")),
        Param("detail", "float", 0.5, "Blend of the perceptual result over the fidelity result.", minimum=0.0,
              maximum=1.0, step=0.05),
        Param("tile", "int", 0, "Tile size (0: automatic from the memory budget).", minimum=0, maximum=4096,
              unit="px"),
        Param("device", "choice", "auto", "Compute device.", choices=("auto", "cpu", "cuda", "mps")),
        Param("precision", "choice", "auto", "Arithmetic precision.", choices=("auto", "fp32", "fp16", "bf16")),
        Param("temporal", "bool", False, "Flow-guided blending of consecutive outputs against flicker."),
    )
