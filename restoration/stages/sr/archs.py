"""The super-resolution networks, written in torch: SRVGGNetCompact, RRDBNet (ESRGAN), SRMD and waifu2x UpConv7.

Each network lists its weighted layers in export order (`ncnn_slots`) so a converted ncnn graph can be checked
against it layer by layer, and reports its LR context radius, FLOPs and activation memory per input pixel for
the tiler and the benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

# SRMD's degradation input for bicubic downsampling: the 15-dim PCA projection of the bicubic kernel, as used
# by srmd-ncnn-vulkan's preprocessing for all scales (noise-free models take no noise-level map).
SRMD_BICUBIC_DEGRADATION = (
    -1.12360956e-08, -1.36899159e-08, 1.85637958e-02, 2.86066886e-08, 3.35292965e-02, 8.37272935e-08,
    -2.54424009e-07, -3.16234976e-02, -1.35169253e-02, -1.10466090e-08, 3.84753793e-02, 3.79465739e-08,
    -2.44916752e-01, -8.02213490e-01, -5.40549755e-01,
)


@dataclass(frozen=True)
class Slot:
    """One weighted layer in export order: its state-dict prefix, layer kind and fused activation."""

    prefix: str
    kind: str  # "conv", "deconv" or "prelu"
    activation: tuple = ()  # () none, ("relu",), ("leaky", slope)


def _conv3(cin: int, cout: int, padding: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, 1, padding)


def _run(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply `layer` in its own weight dtype (bf16/fp16 for the heavy convs, fp32 for the output ones)."""
    weight = getattr(layer, "weight", None)
    return layer(x if weight is None else x.to(weight.dtype))


class MixedPrecision:
    """Heavy layers in a low-precision dtype; residual streams and the layers that read or write pixels stay fp32."""

    fp32_layers: tuple[str, ...] = ()

    def set_precision(self: Any, dtype: torch.dtype) -> None:
        for name, module in self.named_modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.PReLU)):
                module.to(torch.float32 if name in self.fp32_layers else dtype)


class SRVGGNetCompact(MixedPrecision, nn.Module):
    """Real-ESRGAN's compact VGG-style net: conv+PReLU stack, pixel shuffle, plus a nearest-upsampled input."""

    arch = "compact"

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_conv: int = 16,
                 upscale: int = 4, out_scale: float = 1.0):
        super().__init__()
        self.config = dict(num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat, num_conv=num_conv,
                           upscale=upscale, out_scale=out_scale)
        self.upscale = upscale
        self.out_scale = out_scale  # the ×2/×3 animevideo models run at ×4 then shrink bicubically
        layers: list[nn.Module] = [_conv3(num_in_ch, num_feat), nn.PReLU(num_feat)]
        for _ in range(num_conv):
            layers += [_conv3(num_feat, num_feat), nn.PReLU(num_feat)]
        layers.append(_conv3(num_feat, num_out_ch * upscale * upscale))
        self.body = nn.ModuleList(layers)
        self.fp32_layers = ("body.0", f"body.{len(layers) - 1}")

    @property
    def scale(self) -> int:
        return round(self.upscale * self.out_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = _run(layer, out)
        out = F.pixel_shuffle(out.float(), self.upscale)
        out = out + F.interpolate(x.float(), scale_factor=self.upscale, mode="nearest")
        if self.out_scale != 1.0:
            out = F.interpolate(out, scale_factor=self.out_scale, mode="bicubic", align_corners=False)
        return out

    def ncnn_slots(self) -> list[Slot]:
        slots = []
        for i, layer in enumerate(self.body):
            slots.append(Slot(f"body.{i}", "prelu" if isinstance(layer, nn.PReLU) else "conv"))
        return slots

    def context(self) -> int:
        return self.config["num_conv"] + 2

    def macs_per_pixel(self) -> float:
        f, n, s = self.config["num_feat"], self.config["num_conv"], self.upscale
        return 9 * (self.config["num_in_ch"] * f + n * f * f + f * self.config["num_out_ch"] * s * s)

    def activation_bytes_per_pixel(self, element_bytes: int) -> float:
        s2 = self.upscale * self.upscale
        return element_bytes * (3 * self.config["num_feat"] + 3 * 3 * s2)


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3×3 convs with LeakyReLU(0.2), scaled residual."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32):
        super().__init__()
        self.conv1 = _conv3(num_feat, num_grow_ch)
        self.conv2 = _conv3(num_feat + num_grow_ch, num_grow_ch)
        self.conv3 = _conv3(num_feat + 2 * num_grow_ch, num_grow_ch)
        self.conv4 = _conv3(num_feat + 3 * num_grow_ch, num_grow_ch)
        self.conv5 = _conv3(num_feat + 4 * num_grow_ch, num_feat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xc = x.to(self.conv1.weight.dtype)
        x1 = F.leaky_relu_(self.conv1(xc), 0.2)
        x2 = F.leaky_relu_(self.conv2(torch.cat((xc, x1), 1)), 0.2)
        x3 = F.leaky_relu_(self.conv3(torch.cat((xc, x1, x2), 1)), 0.2)
        x4 = F.leaky_relu_(self.conv4(torch.cat((xc, x1, x2, x3), 1)), 0.2)
        x5 = self.conv5(torch.cat((xc, x1, x2, x3, x4), 1))
        return torch.add(x, x5, alpha=0.2)  # one pass, and the residual stream keeps x's (fp32) precision


class RRDB(nn.Module):
    """Residual-in-residual dense block: three dense blocks, scaled residual."""

    def __init__(self, num_feat: int, num_grow_ch: int = 32):
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.add(x, self.rdb3(self.rdb2(self.rdb1(x))), alpha=0.2)


class RRDBNet(MixedPrecision, nn.Module):
    """ESRGAN / Real-ESRGAN generator; ×1 and ×2 variants pixel-unshuffle the input first (Real-ESRGAN x2plus)."""

    arch = "rrdbnet"

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, scale: int = 4, num_feat: int = 64,
                 num_block: int = 23, num_grow_ch: int = 32, unshuffle: int = 1):
        super().__init__()
        self.config = dict(num_in_ch=num_in_ch, num_out_ch=num_out_ch, scale=scale, num_feat=num_feat,
                           num_block=num_block, num_grow_ch=num_grow_ch, unshuffle=unshuffle)
        self.scale = scale
        self.unshuffle = unshuffle
        self.num_upsample = {1: 0, 2: 1, 4: 2, 8: 3}[scale * unshuffle]
        self.conv_first = _conv3(num_in_ch * unshuffle * unshuffle, num_feat)
        self.body = nn.Sequential(*[RRDB(num_feat, num_grow_ch) for _ in range(num_block)])
        self.conv_body = _conv3(num_feat, num_feat)
        for i in range(1, self.num_upsample + 1):
            setattr(self, f"conv_up{i}", _conv3(num_feat, num_feat))
        self.conv_hr = _conv3(num_feat, num_feat)
        self.conv_last = _conv3(num_feat, num_out_ch)
        self.fp32_layers = ("conv_first", "conv_last")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if self.unshuffle > 1:  # pixel-unshuffle needs sides divisible by it: reflect-pad, crop afterwards
            u = self.unshuffle
            x = F.pad(x, (0, -width % u, 0, -height % u), mode="reflect")
            x = F.pixel_unshuffle(x, u)
        feat = _run(self.conv_first, x).float()
        feat = feat + _run(self.conv_body, self.body(feat)).float()
        for i in range(1, self.num_upsample + 1):
            up = getattr(self, f"conv_up{i}")
            feat = F.leaky_relu_(_run(up, F.interpolate(feat.to(up.weight.dtype), scale_factor=2)), 0.2)
        out = _run(self.conv_last, F.leaky_relu_(_run(self.conv_hr, feat), 0.2))
        return out[..., :height * self.scale, :width * self.scale]

    def ncnn_slots(self) -> list[Slot]:
        leaky = ("leaky", 0.2)
        slots = [Slot("conv_first", "conv")]
        for b in range(self.config["num_block"]):
            for r in (1, 2, 3):
                for c in (1, 2, 3, 4, 5):
                    slots.append(Slot(f"body.{b}.rdb{r}.conv{c}", "conv", leaky if c < 5 else ()))
        slots.append(Slot("conv_body", "conv"))
        slots += [Slot(f"conv_up{i}", "conv", leaky) for i in range(1, self.num_upsample + 1)]
        return slots + [Slot("conv_hr", "conv", leaky), Slot("conv_last", "conv")]

    def context(self) -> int:
        # The true receptive field spans hundreds of px but its weight decays fast; 20 LR px keep tiles exact
        # to well under 1e-3 (tests/test_stage_sr.py measures it).
        return 20 // self.unshuffle * self.unshuffle

    def macs_per_pixel(self) -> float:
        f, g, u = self.config["num_feat"], self.config["num_grow_ch"], self.unshuffle
        rdb = sum((f + i * g) * g for i in range(4)) + (f + 4 * g) * f
        lr = (self.config["num_in_ch"] * u * u * f + self.config["num_block"] * 3 * rdb + f * f) / (u * u)
        ups = sum(4 ** i for i in range(1, self.num_upsample + 1)) * f * f / (u * u)
        hr = self.scale * self.scale * (f * f + f * self.config["num_out_ch"])
        return 9 * (lr + ups + hr)

    def activation_bytes_per_pixel(self, element_bytes: int) -> float:
        f, g = self.config["num_feat"], self.config["num_grow_ch"]
        s2 = self.scale * self.scale
        trunk = 3 * f + 2 * (f + 4 * g)
        return element_bytes * max(trunk, 3 * f * s2 + 3 * s2)


class SRMD(MixedPrecision, nn.Module):
    """SRMD (Zhang et al., CVPR 2018): LR image plus constant degradation maps through a plain conv+ReLU stack."""

    arch = "srmd"

    def __init__(self, scale: int = 4, num_feat: int = 128, num_conv: int = 12, num_maps: int = 15):
        super().__init__()
        self.config = dict(scale=scale, num_feat=num_feat, num_conv=num_conv, num_maps=num_maps)
        self.scale = scale
        self.register_buffer("degradation", torch.zeros(num_maps))
        layers: list[nn.Module] = []
        cin = 3 + num_maps
        for _ in range(num_conv - 1):
            layers += [_conv3(cin, num_feat), nn.ReLU(inplace=True)]
            cin = num_feat
        layers.append(_conv3(cin, 3 * scale * scale))
        self.body = nn.Sequential(*layers)
        self.fp32_layers = ("body.0", f"body.{len(layers) - 1}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        maps = self.degradation.to(x.dtype).view(1, -1, 1, 1).expand(n, -1, h, w)
        out = torch.cat((x, maps), 1)
        for layer in self.body:
            out = _run(layer, out)
        return F.pixel_shuffle(out, self.scale)

    def ncnn_slots(self) -> list[Slot]:
        convs = [i for i, m in enumerate(self.body) if isinstance(m, nn.Conv2d)]
        return [Slot(f"body.{i}", "conv", ("relu",) if i != convs[-1] else ()) for i in convs]

    def context(self) -> int:
        return self.config["num_conv"]

    def macs_per_pixel(self) -> float:
        f, n, s = self.config["num_feat"], self.config["num_conv"], self.scale
        return 9 * ((3 + self.config["num_maps"]) * f + (n - 2) * f * f + f * 3 * s * s)

    def activation_bytes_per_pixel(self, element_bytes: int) -> float:
        return element_bytes * (3 * self.config["num_feat"] + 2 * 3 * self.scale * self.scale)


class UpConv7(MixedPrecision, nn.Module):
    """waifu2x's upconv_7: six unpadded 3×3 convs with LeakyReLU(0.1), then a 4×4 stride-2 deconvolution (×2)."""

    arch = "upconv7"
    widths = (3, 16, 32, 64, 128, 128, 256)
    pad = 7

    def __init__(self) -> None:
        super().__init__()
        self.config: dict[str, Any] = {}
        self.scale = 2
        self.convs = nn.ModuleList(_conv3(a, b, padding=0) for a, b in zip(self.widths[:-1], self.widths[1:]))
        self.deconv = nn.ConvTranspose2d(self.widths[-1], 3, 4, 2, 3)
        self.fp32_layers = ("convs.0", "deconv")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.pad(x, (self.pad,) * 4, mode="replicate")
        for conv in self.convs:
            out = F.leaky_relu_(_run(conv, out), 0.1)
        return _run(self.deconv, out)

    def ncnn_slots(self) -> list[Slot]:
        return [Slot(f"convs.{i}", "conv", ("leaky", 0.1)) for i in range(len(self.convs))] + [Slot("deconv", "deconv")]

    def context(self) -> int:
        return self.pad

    def macs_per_pixel(self) -> float:
        convs = sum(a * b for a, b in zip(self.widths[:-1], self.widths[1:])) * 9
        return convs + self.widths[-1] * 3 * 16

    def activation_bytes_per_pixel(self, element_bytes: int) -> float:
        return element_bytes * (3 * 256 + 2 * 3 * 4)


ARCHS: dict[str, type[nn.Module]] = {cls.arch: cls for cls in (SRVGGNetCompact, RRDBNet, SRMD, UpConv7)}


def build(arch: str, config: dict[str, Any]) -> nn.Module:
    """An untrained network of `arch` with `config` (as stored beside cached weights)."""
    return ARCHS[arch](**config)
