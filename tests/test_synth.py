"""The degradation simulator: reproducible, each damage changes only what it should, files reload."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from restoration import metrics as M
from restoration.errors import ExportError, ParamError
from restoration.synth import (DAMAGES, DamageSettings, bicubic_downscale, default_overlay_dir, downscale,
                               read_synth, run_synth, simulate, unweave, write_synth)
from restoration.synth.geometry import weave_path
from restoration.synth.grain import sigma_at

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CITY = DATA / "Vid4" / "city"
OVERLAYS = DATA / "archival" / "filmdamage_overlays"


def moving_texture(n: int = 5, h: int = 112, w: int = 144, seed: int = 0) -> list[np.ndarray]:
    """A colour texture drifting 1 px/frame to the right, values inside [0.1, 0.9]."""
    rng = np.random.default_rng(seed)
    big = np.stack([cv2.GaussianBlur(rng.standard_normal((h, w + n)).astype(np.float32), (0, 0), s)
                    for s in (1.2, 2.0, 3.0)], axis=2)
    big = (big - big.min((0, 1))) / (big.max((0, 1)) - big.min((0, 1)))
    big = 0.1 + 0.8 * big
    return [np.ascontiguousarray(big[:, n - t:n - t + w]) for t in range(n)]


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return moving_texture()


def city_frames(n: int, crop=(slice(100, 292), slice(200, 456))) -> list[np.ndarray]:
    if not (CITY / "GT" / "0000.png").is_file():
        pytest.skip("Vid4 city not in ../shared/data")
    from restoration.io import read_image

    return [read_image(CITY / "GT" / f"{i:04d}.png")[0][crop] for i in range(n)]


def test_same_seed_gives_identical_arrays_and_another_seed_differs(frames):
    damage = [d for d in DAMAGES if d != "blur"]
    a = simulate(frames, damage, seed=7)
    b = simulate(frames, damage, seed=7)
    c = simulate(frames, damage, seed=8)
    for name in ("degraded", "truth", "defect_masks", "scratch_masks", "grain"):
        for x, y in zip(getattr(a, name), getattr(b, name)):
            assert np.array_equal(x, y), name
    for name in ("weave", "pan", "flicker", "fade"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert json.dumps(a.params) == json.dumps(b.params)
    assert not np.array_equal(a.degraded[0], c.degraded[0])
    assert not np.array_equal(a.weave, c.weave)
    assert all(np.array_equal(x, y) for x, y in zip(a.truth, c.truth))  # truth does not depend on the seed


def test_damage_streams_are_independent(frames):
    alone = simulate(frames, ["weave"], seed=3)
    combined = simulate(frames, ["weave", "grain", "dust"], seed=3)
    assert np.array_equal(alone.weave, combined.weave)


def test_no_damage_returns_the_source(frames):
    clip = simulate(frames, [], seed=0)
    for d, t, s in zip(clip.degraded, clip.truth, frames):
        assert np.array_equal(d, s) and np.array_equal(t, s)


def test_dust_changes_only_masked_pixels_and_lasts_one_or_two_frames(frames):
    settings = DamageSettings(dust_density=2000.0, dust_two_frame_fraction=0.3)
    clip = simulate(frames, ["dust"], seed=1, settings=settings, overlay_dir=OVERLAYS)
    assert clip.scratch_masks is None and clip.grain is None and clip.weave is None
    bright = dark = 0
    for deg, truth, mask in zip(clip.degraded, clip.truth, clip.defect_masks):
        assert mask.dtype == bool and mask.shape == deg.shape[:2]
        assert 0.002 < mask.mean() < 0.6
        assert np.array_equal(deg[~mask], truth[~mask])             # exactly untouched outside the mask
        assert np.mean(np.abs(deg - truth).max(axis=2)[mask] > 1e-4) > 0.9
        bright += int(np.sum(deg[mask].mean(axis=1) > truth[mask].mean(axis=1) + 0.05))
        dark += int(np.sum(deg[mask].mean(axis=1) < truth[mask].mean(axis=1) - 0.05))
    assert bright > 0 and dark > bright                              # dark defects dominate, bright ones exist
    spans = [d["frames"] for d in clip.params["dust"]["defects"]]
    assert {len(s) for s in spans} == {1, 2}
    assert all(len(s) == 1 or s[1] == s[0] + 1 for s in spans)
    json.dumps(clip.params)


def test_dust_without_overlays_falls_back_to_procedural_defects(frames, tmp_path):
    clip = simulate(frames, ["dust"], seed=1, settings=DamageSettings(dust_density=1500.0),
                    overlay_dir=tmp_path / "none")
    assert clip.params["dust"]["procedural_only"] is True
    assert "procedural only" in clip.params["dust"]["overlay_source"]
    sources = {d["source"] for d in clip.params["dust"]["defects"]}
    assert sources and all(s.startswith("procedural:") for s in sources)
    assert sum(m.sum() for m in clip.defect_masks) > 0


def test_dust_uses_the_overlay_categories_when_present(frames):
    if not OVERLAYS.is_dir():
        pytest.skip("film-damage overlays not in ../shared/data")
    clip = simulate(frames, ["dust"], seed=2, settings=DamageSettings(dust_density=3000.0), overlay_dir=OVERLAYS)
    sources = {d["source"].split("/")[0] for d in clip.params["dust"]["defects"]}
    overlay_categories = {s for s in sources if not s.startswith("procedural:")}
    assert len(overlay_categories) >= 6 and "procedural:speck" in sources
    assert clip.params["dust"]["procedural_only"] is False


def test_default_overlay_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FILMRESTORE_DAMAGE_OVERLAYS", str(tmp_path))
    assert default_overlay_dir() == tmp_path
    monkeypatch.delenv("FILMRESTORE_DAMAGE_OVERLAYS")
    assert default_overlay_dir().parts[-4:] == ("shared", "data", "archival", "filmdamage_overlays")


def test_scratches_are_thin_vertical_persistent_and_masked_exactly():
    frames = moving_texture(n=12)
    clip = simulate(frames, ["scratches"], seed=4, settings=DamageSettings(scratch_count=2))
    h = frames[0].shape[0]
    tracks = clip.params["scratches"]["tracks"]
    assert len(tracks) == 2 and all(t["length"] >= 10 for t in tracks)
    for t, (deg, truth, mask) in enumerate(zip(clip.degraded, clip.truth, clip.scratch_masks)):
        assert np.array_equal(deg[~mask], truth[~mask])
        live = [s for s in tracks if s["start"] <= t < s["start"] + s["length"]]
        columns = mask.sum(axis=0)
        assert np.count_nonzero(columns > 0.8 * h) >= len(live)      # near-full-height lines
        assert mask.sum() <= len(live) * h * 8                       # a few px wide at most
        for s in live:
            x = s["x"][t - s["start"]]
            assert mask[h // 2, int(round(x))]
    for s in tracks:
        assert np.abs(np.diff(s["x"])).max() < 1.0                   # slight drift, never a jump


def test_grain_is_what_was_added_and_follows_the_requested_noise_level_function():
    flat_levels = np.linspace(0.05, 0.95, 256, dtype=np.float32)
    ramp = np.repeat(np.tile(flat_levels[None, :], (192, 1))[..., None], 3, axis=2)
    ramp[..., 0] *= 0.9  # not monochrome: per-channel weights apply
    settings = DamageSettings()
    clip = simulate([ramp] * 4, ["grain"], seed=5, settings=settings)
    for deg, truth, grain in zip(clip.degraded, clip.truth, clip.grain):
        np.testing.assert_allclose(deg, truth + grain, atol=1e-6)
    centres, measured, _ = M.noise_level_function(clip.grain, clip.truth, bins=12)
    curve = np.asarray(clip.params["grain"]["sigma_curve"])
    requested = sigma_at(curve, np.repeat(centres[:, None], 3, axis=1)[None])[0]
    assert M.nlf_error(measured, requested) < 0.08
    assert np.nanmean(measured[:, 2]) > np.nanmean(measured[:, 1])   # blue layer grainier than green
    g0, g1 = clip.grain[0][..., 1].ravel(), clip.grain[1][..., 1].ravel()
    assert abs(np.corrcoef(g0, g1)[0, 1]) < 0.05                     # new grain every frame


def test_monochrome_source_gets_identical_grain_in_every_channel():
    grey = np.full((64, 64, 3), 0.4, np.float32)
    clip = simulate([grey] * 2, ["grain"], seed=0)
    assert clip.params["grain"]["monochrome"] is True
    assert np.array_equal(clip.grain[0][..., 0], clip.grain[0][..., 2])


def test_grain_size_sets_the_spectrum():
    flat = np.empty((192, 192, 3), np.float32)
    flat[:] = (0.5, 0.45, 0.4)  # colour: three independent grain planes per frame
    small = simulate([flat] * 4, ["grain"], seed=1, settings=DamageSettings(grain_size=0.8))
    small2 = simulate([flat] * 4, ["grain"], seed=2, settings=DamageSettings(grain_size=0.8))
    large = simulate([flat] * 4, ["grain"], seed=1, settings=DamageSettings(grain_size=1.6))
    assert M.spectrum_correlation(small.grain, small2.grain) > 0.95
    assert M.spectrum_correlation(small.grain, large.grain) < 0.9


def test_flicker_mean_ratio_matches_the_gain(frames):
    settings = DamageSettings(flicker_gain_sigma=0.05, flicker_offset_sigma=0.0, flicker_spatial=0.0)
    clip = simulate(frames, ["flicker"], seed=6, settings=settings)
    ratios = [float(d.mean() / t.mean()) for d, t in zip(clip.degraded, clip.truth)]
    np.testing.assert_allclose(ratios, clip.flicker[:, 0], atol=2e-4)
    assert np.std(clip.flicker[:, 0]) > 0.005
    default = simulate(frames, ["flicker"], seed=6)
    assert M.flicker_index(default.degraded, default.truth) > 0.005
    # the spatial part is low-frequency: the gain field is smooth
    ratio = default.degraded[0].mean(axis=2) / default.truth[0].mean(axis=2)
    assert np.abs(np.diff(ratio, axis=1)).mean() < 0.01


def test_weave_is_exactly_what_unweave_removes(frames):
    clip = simulate(frames, ["weave"], seed=9)
    h, w = clip.truth[0].shape[:2]
    assert (w, h) == tuple(clip.params["geometry"]["output_size"]) and w < frames[0].shape[1]
    rows, cols = slice(int(0.2 * h), int(0.8 * h)), slice(int(0.2 * w), int(0.8 * w))
    for deg, truth, weave in zip(clip.degraded, clip.truth, clip.weave):
        restored = unweave(deg, tuple(weave))
        assert M.psnr(restored[rows, cols], truth[rows, cols]) > 40.0
        assert M.psnr(deg[rows, cols], truth[rows, cols]) < 30.0
        # rotation about the centre averages out: the central region moves by the translation
        assert M.frame_shift(deg, truth) == pytest.approx(weave[:2], abs=0.05)


def test_weave_statistics_follow_the_settings():
    path = weave_path(4000, 1.5, 0.15, 0.6, np.random.default_rng(0))
    assert path[:, :2].std(axis=0) == pytest.approx([1.5, 1.5], rel=0.08)
    assert path[:, 2].std() == pytest.approx(0.15, rel=0.08)
    assert np.corrcoef(path[:-1, 0], path[1:, 0])[0, 1] == pytest.approx(0.6, abs=0.05)
    assert np.abs(path[:, :2]).max() <= 4.5 + 1e-9


def test_pan_is_in_the_truth_and_weave_rides_on_it():
    frames = [moving_texture(n=1, h=120, w=160)[0]] * 5   # a still: all motion comes from the pan
    settings = DamageSettings(pan_px_per_frame=(1.25, -0.5))
    clip = simulate(frames, ["weave"], seed=2, settings=settings)
    np.testing.assert_allclose(clip.pan[3], [3.75, -1.5])
    for t in range(4):
        # content moves by -pan per frame between consecutive truth frames
        assert M.frame_shift(clip.truth[t + 1], clip.truth[t]) == pytest.approx([-1.25, 0.5], abs=0.02)
        assert np.isfinite(clip.truth[t]).all() and clip.truth[t].min() >= 0.0
    with pytest.raises(ParamError, match="pan_px_per_frame"):
        simulate(frames, ["weave"], settings=DamageSettings(pan_px_per_frame=(40.0, 0.0)))


def test_fade_gives_a_magenta_cast_lifted_blacks_and_a_compressed_range():
    ramp = np.repeat(np.tile(np.linspace(0, 1, 256, dtype=np.float32)[None, :], (16, 1))[..., None], 3, axis=2)
    clip = simulate([ramp] * 6, ["fade"], seed=0, settings=DamageSettings(fade_strength=0.6))
    faded = clip.degraded[2]
    mids = faded[:, 96:160].reshape(-1, 3).mean(axis=0)
    assert mids[0] > mids[1] + 0.05 and mids[2] > mids[1] + 0.03     # red and blue up: magenta cast
    assert faded[:, 0].min() > 0.05                                   # blacks lifted
    span = faded[:, -1].mean(axis=0) - faded[:, 0].mean(axis=0)
    assert np.all(span < 0.95)                                        # range compressed
    strengths = clip.fade[:, 0]
    assert np.all(np.abs(np.diff(strengths)) < 0.05)                  # slowly varying
    assert M.delta_e2000(faded, ramp)[0] > 5.0


def test_blur_bicubic_reproduces_the_standard_vid4_low_resolution_frames():
    if not (CITY / "LRx4" / "0000.png").is_file():
        pytest.skip("Vid4 city not in ../shared/data")
    from restoration.io import read_image

    gt, _ = read_image(CITY / "GT" / "0000.png")
    lr, _ = read_image(CITY / "LRx4" / "0000.png")
    ours = bicubic_downscale(gt, 4)
    diff = np.abs(np.round(ours * 255) - np.round(lr * 255))
    # identical 8-bit values but for rounding ties (float32 frames vs MATLAB's doubles): 1 of 76 032 here
    assert diff.max() <= 1 and np.count_nonzero(diff) <= 3


def test_blur_makes_low_resolution_degraded_frames(frames):
    clip = simulate(frames, ["blur", "dust"], seed=0, settings=DamageSettings(sr_scale=4, dust_density=500.0))
    h, w = clip.truth[0].shape[:2]
    assert h % 4 == 0 and w % 4 == 0
    assert clip.degraded[0].shape == (h // 4, w // 4, 3) and clip.low_res[0] is clip.degraded[0]
    assert clip.defect_masks[0].shape == (h // 4, w // 4)
    flat = np.full((32, 48, 3), 0.3, np.float32)
    for kernel in ("bicubic", "gaussian"):
        low = downscale(flat, 2, kernel)
        assert low.shape == (16, 24, 3) and np.allclose(low, 0.3, atol=1e-6)
    gaussian = simulate(frames, ["blur"], seed=0, settings=DamageSettings(sr_scale=2, sr_kernel="gaussian"))
    assert gaussian.degraded[0].shape == (h // 2, w // 2, 3)


def test_all_damages_together_on_real_footage():
    frames = city_frames(4)
    clip = simulate(frames, [d for d in DAMAGES if d != "blur"], seed=11)
    assert len(clip.degraded) == 4
    for deg, truth in zip(clip.degraded, clip.truth):
        assert deg.dtype == np.float32 and deg.shape == truth.shape
        assert 0.0 <= deg.min() and deg.max() <= 1.0
        assert M.psnr(deg, truth) < 25.0


def test_settings_round_trip_and_bad_values_name_the_field():
    settings = DamageSettings(grain_sigma=0.03, pan_px_per_frame=(1.0, 2.0))
    again = DamageSettings.from_dict(json.loads(json.dumps(settings.to_dict())))
    assert again == settings
    with pytest.raises(ParamError, match="synth.grain_sigma"):
        DamageSettings(grain_sigma=-1.0)
    with pytest.raises(ParamError, match="synth.sr_kernel"):
        DamageSettings(sr_kernel="lanczos")
    with pytest.raises(ParamError, match="synth.bogus"):
        DamageSettings.from_dict({"bogus": 1})
    with pytest.raises(ParamError, match="unknown damage"):
        simulate(moving_texture(n=2), ["dust", "mold"])


def test_write_synth_and_read_it_back(frames, tmp_path):
    clip = simulate(frames, ["dust", "scratches", "grain", "flicker", "weave", "fade"], seed=3)
    out = tmp_path / "clip"
    write_synth(clip, out)
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    for sub in ("degraded", "truth", "masks/defects", "masks/scratches", "grain"):
        assert f"{sub}/000000.png" in names and f"{sub}/{len(frames) - 1:06d}.png" in names
    assert {"params.json", "weave.csv", "pan.csv", "flicker.csv", "fade.csv"} <= names
    assert not list(tmp_path.glob(".clip*"))                          # no temporary left behind
    back = read_synth(out)
    assert back.params["seed"] == 3 and back.params["damage"] == clip.params["damage"]
    for a, b in zip(back.degraded, clip.degraded):
        assert np.abs(a - b).max() <= 0.5 / 65535 + 1e-7
    for a, b in zip(back.defect_masks, clip.defect_masks):
        assert np.array_equal(a, b)
    for a, b in zip(back.grain, clip.grain):
        assert np.abs(a - b).max() <= 0.5 / 65535 + 1e-7
    np.testing.assert_allclose(back.weave, clip.weave, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(back.params["weave"]["values"]), clip.weave, atol=1e-12)
    with pytest.raises(ExportError, match="already exists"):
        write_synth(clip, out)
    write_synth(clip, out, overwrite=True)                             # a clip we wrote is ours to replace
    (out / "notes.md").write_text("mine")
    with pytest.raises(ExportError, match=r"did not write \(notes.md\)"):
        write_synth(clip, out, overwrite=True)
    assert (out / "notes.md").read_text() == "mine"


def test_run_synth_turns_a_still_into_a_panned_clip(tmp_path):
    from restoration.io import write_image

    still = tmp_path / "still.png"
    write_image(still, moving_texture(n=1, h=96, w=128)[0], bits=16)
    out = run_synth(str(still), str(tmp_path / "synth"), ["grain", "weave"], seed=1)
    params = json.loads((out / "params.json").read_text())
    assert params["frames"] == 24 and params["source"]["frames_used"] == 1
    assert params["settings"]["pan_px_per_frame"] == [0.75, 0.25]
    assert len(list((out / "degraded").glob("*.png"))) == 24
    with pytest.raises(ExportError):
        run_synth(str(still), str(tmp_path), ["grain"], seed=1)          # never around the source
