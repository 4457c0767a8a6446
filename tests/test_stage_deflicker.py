"""Stage `deflicker`: per-frame gain removed, genuine light changes kept, clean content untouched, local flicker."""

from __future__ import annotations

import numpy as np

from restoration.stages.deflicker.track import find_small_step, find_steps, flicker_spread
from restoration.metrics import flicker_index, flicker_index_local, psnr
from restoration.pipeline import ArraySource, Pipeline, run_stage_on_frames, settings_for
from restoration.stage import Shot
from restoration.synth import light
from restoration.synth.light import flickered, textured_picture, with_grain

WIDTH, HEIGHT = 256, 192


def picture(seed: int, width: int = WIDTH + 40, height: int = HEIGHT) -> np.ndarray:
    return textured_picture(seed, width, height)


def panning_clip(n: int, seed: int, speed: float = 1.0) -> list[np.ndarray]:
    return light.panning_clip(n, seed, WIDTH, HEIGHT, speed)


def run(frames: list[np.ndarray], params: dict | None = None) -> list[np.ndarray]:
    return run_stage_on_frames("deflicker", frames, params or {}, shots=[Shot(0, len(frames))])


def test_per_frame_gain_flicker_is_removed():
    rng = np.random.default_rng(1)
    truth = panning_clip(30, seed=2)
    gains = 1.0 + 0.05 * np.clip(rng.standard_normal(30), -3, 3)
    offsets = 0.01 * np.clip(rng.standard_normal(30), -3, 3)
    degraded = flickered(truth, gains, offsets)
    out = run(degraded)
    before, after = flicker_index(degraded, truth), flicker_index(out, truth)
    assert after < 0.15 * before
    assert psnr(np.stack(out), np.stack(truth)) > psnr(np.stack(degraded), np.stack(truth)) + 6.0


def test_a_sustained_change_of_light_is_followed_not_smoothed():
    rng = np.random.default_rng(3)
    truth = panning_clip(32, seed=4)
    light = np.where(np.arange(32) < 16, 1.0, 1.25)  # a lamp switched on at frame 16
    lit = flickered(truth, light)
    degraded = flickered(lit, 1.0 + 0.012 * rng.standard_normal(32))
    out = run(degraded)
    means = np.array([f.mean() for f in out])
    lit_means = np.array([f.mean() for f in lit])
    # each side stays at its own level (no pumping into the step), the step itself is kept
    assert np.abs(means / lit_means - 1).max() < 0.015
    step = means[16:20].mean() / means[12:16].mean()
    assert abs(step - 1.25) < 0.02


def test_flicker_free_content_is_nearly_untouched():
    clean = with_grain(panning_clip(24, seed=5, speed=1.5), 0.02, seed=6)
    out = run(clean)
    assert psnr(np.stack(out), np.stack(clean)) > 50.0
    pipe = Pipeline(ArraySource(clean), settings_for(["deflicker"], {}), shots=[Shot(0, 24)])
    gains = [pipe.side_data(i)["deflicker"]["gain"] for i in range(24)]
    assert max(abs(g - 1) for g in gains) < 0.005


def test_local_flicker_is_evened_out_block_by_block():
    rng = np.random.default_rng(7)
    truth = panning_clip(24, seed=8)
    xs = np.linspace(-1, 1, WIDTH)[None, :, None]
    degraded = [np.clip(f * (1 + 0.06 * rng.standard_normal() * xs), 0, 1).astype(np.float32) for f in truth]
    local = run(degraded, {"local": True})
    global_only = run(degraded, {"local": False})
    before = flicker_index_local(degraded, truth, block=32)
    assert flicker_index_local(local, truth, block=32) < 0.3 * before
    assert flicker_index_local(local, truth, block=32) < 0.5 * flicker_index_local(global_only, truth, block=32)


def test_shots_are_corrected_apart_and_strength_zero_is_identity():
    rng = np.random.default_rng(9)
    first = flickered(panning_clip(12, seed=10), 1.0 + 0.04 * rng.standard_normal(12))
    second = flickered(panning_clip(12, seed=11), 0.6 + 0.03 * rng.standard_normal(12))
    clip = first + second
    together = run_stage_on_frames("deflicker", clip, {}, shots=[Shot(0, 12), Shot(12, 24)])
    alone = run(second)
    assert all(np.array_equal(a, b) for a, b in zip(together[12:], alone))
    again = run_stage_on_frames("deflicker", clip, {}, shots=[Shot(0, 12), Shot(12, 24)])
    assert all(np.array_equal(a, b) for a, b in zip(together, again))
    untouched = run(first, {"strength": 0.0})
    assert all(np.array_equal(a, b) for a, b in zip(untouched, first))


def test_step_detection_keeps_fades_whole_and_finds_lasting_steps():
    t = np.arange(48, dtype=np.float64)
    rng = np.random.default_rng(12)
    noise = 0.01 * rng.standard_normal(48)
    usable = np.ones(48, bool)
    assert find_steps(0.02 * t + noise, usable) == []  # a steady fade is one light, whatever its slope
    eased = np.log(1.0 - 0.45 * np.clip((t - 4) / 40, 0, 1) ** 2 * (3 - 2 * np.clip((t - 4) / 40, 0, 1)))
    assert find_steps(eased + noise, usable) == []  # ... and so is one that starts and ends gently
    t = np.arange(64, dtype=np.float64)
    noise = 0.01 * rng.standard_normal(64)
    steps = find_steps(np.where(t < 16, -0.2, 0.0) + np.where(t < 40, 0.0, -0.05) + noise, np.ones(64, bool))
    assert sorted(at for at, _ in steps) == [16, 40]
    (_, big), (_, small) = sorted(steps)
    assert big > 0.08 and abs(small + 0.05) < 0.015  # a change of light (kept) and an exposure step (removed)


def test_tiny_frames_and_single_frame_shots_work():
    rng = np.random.default_rng(13)
    for width, height, n in ((8, 8, 3), (40, 30, 4), (WIDTH, HEIGHT, 1)):
        frames = [rng.random((height, width, 3)).astype(np.float32) for _ in range(n)]
        out = run(frames)
        assert len(out) == n and all(o.shape == f.shape and np.isfinite(o).all() for o, f in zip(out, frames))
    single = run([picture(14)[:, :WIDTH]])
    assert np.array_equal(single[0], picture(14)[:, :WIDTH])


def test_dips_of_a_few_frames_are_removed_without_pulling_their_neighbours():
    for seed in range(3):
        rng = np.random.default_rng(20 + seed)
        truth = panning_clip(40, seed=21 + seed)
        gains = 1.0 + 0.01 * rng.standard_normal(40)
        start2, length2 = 6, 2
        start4 = int(rng.integers(18, 30))
        gains[start2:start2 + length2] *= 0.9  # a 2-frame dip at the shot's start
        gains[start4:start4 + 4] *= 0.88  # a 4-frame dip mid-shot
        degraded = flickered(truth, gains)
        out = run(degraded)
        ratio = np.array([o.mean() / t.mean() for o, t in zip(out, truth)])
        ratio /= np.median(ratio)
        # every frame, the shot's first ones included, within 1 % of the truth's brightness: dips gone, no ramp
        assert np.abs(ratio - 1).max() < 0.01, (seed, np.round(ratio, 3))
        before = np.array([d.mean() / t.mean() for d, t in zip(degraded, truth)])
        assert np.abs(before / np.median(before) - 1).max() > 0.09


def test_a_small_exposure_step_inside_a_shot_is_removed_not_left_as_a_ramp():
    # -5 code values from frame 24 on (a splice of a differently developed piece within the shot), over 1 % flicker:
    # the old ±window level spread it into a ramp over ±9 frames (worst frame about 5 code values off)
    for seed in range(3):
        rng = np.random.default_rng(40 + seed)
        truth = panning_clip(48, seed=41 + seed)
        offsets = np.where(np.arange(48) >= 24, -5 / 255, 0.0)
        degraded = flickered(truth, 1.0 + 0.01 * rng.standard_normal(48), offsets)
        out = run(degraded)
        error = 255 * np.array([o.mean() - t.mean() for o, t in zip(out, truth)])
        # the piece with the most pictures is the reference (the first, when as long: its start is not moved), the
        # later piece is brought up to it
        # (what is left is the level's estimate over 1 % flicker, a gentle slope, not a ramp at the splice)
        assert np.abs(error[:6]).max() < 1.0, (seed, np.round(error, 2))
        assert np.abs(error).max() < 2.0, (seed, np.round(error, 2))
        assert abs(error[24:30].mean() - error[18:24].mean()) < 0.75, (seed, np.round(error, 2))


def test_a_few_frames_off_at_a_shots_start_or_end_are_brought_to_the_shot():
    # a printer light changed a few frames late (a -5 code value step over the shot's first 2-6 frames) or a flash
    # on its last frames: the running median and the step test, needing frames on both sides, left them (the
    # first frames about 4 code values dark); and the shot itself is not moved to those few frames
    for seed, (short, head, size) in enumerate(((3, True, -5.0), (6, True, 5.0), (2, False, -5.0), (1, False, 12.0))):
        rng = np.random.default_rng(80 + seed)
        truth = panning_clip(48, seed=81 + seed)
        run_frames = np.arange(48) < short if head else np.arange(48) >= 48 - short
        degraded = flickered(truth, 1.0 + 0.01 * rng.standard_normal(48), np.where(run_frames, size / 255, 0.0))
        error = 255 * np.array([o.mean() - t.mean() for o, t in zip(run(degraded), truth)])
        assert np.abs(error - np.median(error)).max() < 1.0, (seed, np.round(error, 2))
        assert abs(np.median(error[~run_frames])) < 0.75, (seed, np.round(error, 2))


def test_a_small_exposure_step_is_found_over_the_whole_shot_and_slow_flicker_is_no_step():
    # 3 code values (about 2.6 %) over 1 % flicker: too small for the local step test, which left about 0.45 cv
    # of it as a slope across the splice; over the whole shot a level with a jump beats a line clearly
    for seed in range(3):
        rng = np.random.default_rng(100 + seed)
        truth = panning_clip(48, seed=101 + seed)
        at, size = 18 + 5 * seed, 3.0 * (-1) ** seed
        degraded = flickered(truth, 1.0 + 0.01 * rng.standard_normal(48), np.where(np.arange(48) >= at, size / 255, 0.0))
        error = 255 * np.array([o.mean() - t.mean() for o, t in zip(run(degraded), truth)])
        assert abs(error[at:at + 6].mean() - error[at - 6:at].mean()) < 0.25, (seed, np.round(error, 2))
    # slow (AR(1) 0.6) flicker wanders like a step; white flicker of the same spread gives none either
    rng = np.random.default_rng(7)
    found = 0
    for _ in range(100):
        wander = np.zeros(150)
        for k in range(1, 150):
            wander[k] = 0.6 * wander[k - 1] + 0.01 * rng.standard_normal()
        usable = np.ones(150, bool)
        found += bool(find_small_step(wander, usable, flicker_spread(wander, usable)))
    assert found <= 3, found


def test_a_small_exposure_step_inside_a_straight_fade_is_found_and_a_fade_alone_has_none():
    # a 4-5 % step inside a straight fade (25-45 % over the shot), over 1 % flicker: the whole-shot test tried only
    # a flat level, and the local test (a quadratic over +-20 frames) misses such a step, so it was averaged
    rng = np.random.default_rng(140)
    found = 0
    for draw in range(20):
        fade = 1.0 - rng.uniform(0.25, 0.45) * np.arange(48) / 47
        fade = fade if draw % 2 else fade[::-1]
        at, size = int(rng.integers(14, 35)), np.log1p(rng.uniform(0.04, 0.05) * (-1) ** draw)
        level = np.log(fade) + 0.01 * rng.standard_normal(48) + np.where(np.arange(48) >= at, size, 0.0)
        usable = np.ones(48, bool)
        step = find_small_step(level, usable, flicker_spread(level, usable))
        found += bool(step) and abs(step[0][0] - at) <= 1 and abs(step[0][1] - size) < 0.01
    assert found >= 15, found
    # the same fades (and fades to black) without a step, over white flicker: no step
    false = 0
    for draw in range(100):
        fade = 1.0 - rng.uniform(0.25, 0.45) * np.arange(48) / 47 if draw % 2 else np.clip(1 - np.arange(48) / 40, 0, 1)
        usable = fade > 0.03
        level = np.log(np.maximum(fade, 1e-4)) + 0.01 * rng.standard_normal(48)
        false += bool(find_small_step(level, usable, flicker_spread(level, usable)))
    assert false == 0, false


def test_the_frames_at_a_small_step_inside_a_fade_count_for_it():
    # the running median behind the dip finder lags at a step on a fade's slope and marks the frames at the step as
    # a dip; left out of the whole-shot step test, the jump lost its evidence (0.68 and 0.53 % of these 3.3 % steps
    # were left). The bench's clips: a step inside a straight fade, over 1 % flicker
    from restoration.bench.deflicker_figures import fade_step

    def pan(n, seed, speed=1.0):
        return light.panning_clip(n, seed, 256, 192, speed)

    def means(frames):
        return np.array([float(f.mean()) for f in frames])

    for seed in (4, 5):
        left, worst = fade_step(seed, run, pan, flickered, means)
        assert abs(left) < 0.25 and worst < 1.0, (seed, left, worst)


def test_an_eased_fade_is_followed_not_flattened():
    # a fade-out to 55 % that starts and ends gently (not a straight line) over 40 frames of a 48-frame shot:
    # the old window fit flattened its turns (worst frame about 3.3 % off the faded truth)
    t = np.clip((np.arange(48) - 4) / 40, 0, 1)
    fade = 1.0 - 0.45 * (3 * t ** 2 - 2 * t ** 3)
    for seed in range(3):
        rng = np.random.default_rng(60 + seed)
        lit = flickered(panning_clip(48, seed=61 + seed), fade)
        out = run(flickered(lit, 1.0 + 0.01 * rng.standard_normal(48)))
        ratio = np.array([o.mean() / f.mean() for o, f in zip(out, lit)])
        assert np.abs(ratio / np.median(ratio) - 1).max() < 0.025, (seed, np.round(ratio, 3))


def test_strength_is_a_fit_only_parameter_over_one_shot_measurement():
    from restoration.stages.deflicker import Deflicker

    stage = Deflicker()
    assert stage.splits_analysis and stage.params.fit_only_names() == ["strength"] or \
        set(stage.params.fit_only_names()) == {"strength"}
    rng = np.random.default_rng(70)
    frames = flickered(panning_clip(20, seed=71), 1.0 + 0.05 * rng.standard_normal(20))
    params = {"window": 9, "local": True, "block_size": 64, "strength": 1.0}
    measured = stage.measure(enumerate(frames), Shot(0, 20), params)
    full = stage.fit(measured, Shot(0, 20), params)
    half = stage.fit(measured, Shot(0, 20), dict(params, strength=0.5))
    assert np.allclose(np.log(half.gain), 0.5 * np.log(full.gain))


def test_straight_fades_to_and_from_black_are_followed():
    # a printer's fade: brightness a straight line that starts or ends abruptly, down to black or up from it. The
    # old window brightened the last frames before black by about 75 %; frames under 3 % are left out (their
    # relative error says little: a tenth of a code value)
    for fade in (np.clip(1 - np.arange(48) / 40, 0, 1), np.clip(np.arange(48) / 30, 0, 1)):
        for seed in range(2):
            rng = np.random.default_rng(80 + seed)
            lit = flickered(panning_clip(48, seed=81 + seed), fade)
            out = run(flickered(lit, 1.0 + 0.01 * rng.standard_normal(48)))
            lit_means = np.array([f.mean() for f in lit])
            seen = lit_means > 0.03
            ratio = np.array([o.mean() for o in out])[seen] / lit_means[seen]
            assert np.abs(ratio / np.median(ratio) - 1).max() < 0.04, (seed, np.round(ratio, 3))


def test_strong_flicker_over_a_short_shot_is_not_kept_as_a_fade():
    # 16 frames of 6 % frame-to-frame flicker wander by chance like a fade; the bench's flowers clip (its gains
    # below) came out drifting 1.062 -> 0.976 of the truth when the fit kept that wander as light
    bench = 1.0 / np.array([1.087, 1.079, 1.050, 0.990, 1.058, 1.011, 0.999, 1.030, 0.996, 1.043, 0.999, 1.106,
                            0.984, 0.934, 0.986, 1.007])
    rng = np.random.default_rng(90)
    for gains in (bench, 1.0 + 0.06 * rng.standard_normal(16), 1.0 + 0.06 * rng.standard_normal(16)):
        truth = panning_clip(16, seed=91)
        out = run(flickered(truth, gains))
        ratio = np.array([o.mean() / f.mean() for o, f in zip(out, truth)])
        assert ratio.max() - ratio.min() < 0.02, np.round(ratio, 3)
