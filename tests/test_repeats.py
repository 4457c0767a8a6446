"""Repeated frames (step printing): found once per clip, one picture through every temporal stage, Pipeline and
render engine alike, also when a repeated pair straddles a chunk boundary."""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np

from restoration.pipeline import ArraySource, Pipeline, StageSetting, settings_for
from restoration.project import Project
from restoration.render import render_project
from restoration.repeats import RepeatMap, find_repeats
from restoration.stage import Shot


def textured(width: int, height: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.uniform(0.0, 1.0, (height, width, 3)).astype(np.float32), (0, 0), 2.0)
    base = (base - base.min()) / (base.max() - base.min())
    return 0.15 + 0.7 * base


def woven_clip(unique: int, width: int = 96, height: int = 72, seed: int = 1, grain: float = 0.01,
               pattern: list[int] | None = None) -> tuple[list[np.ndarray], list[int]]:
    """Frames of a still scene with gate weave and fresh grain per picture; `pattern` lists, per output frame, which
    picture it shows (step printing repeats some); returns the frames and the pattern."""
    rng = np.random.default_rng(seed)
    scene = textured(width + 16, height + 16, seed)
    pictures = []
    for _ in range(unique):
        dx, dy = rng.normal(0, 0.6, 2)
        m = np.float32([[1, 0, 8 + dx], [0, 1, 8 + dy]])
        frame = cv2.warpAffine(scene, m, (width, height), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP)
        frame = frame * np.float32(1 + rng.normal(0, 0.02)) + rng.normal(0, grain, frame.shape).astype(np.float32)
        pictures.append(np.clip(frame, 0, 1).astype(np.float32))
    pattern = pattern if pattern is not None else list(range(unique))
    return [pictures[p].copy() for p in pattern], pattern


def step_printed(unique: int) -> list[int]:
    """Every third picture printed twice: 0 1 1 2 3 4 4 5 ..."""
    pattern: list[int] = []
    for p in range(unique):
        pattern += [p, p] if p % 3 == 1 else [p]
    return pattern


def test_exact_and_nearly_exact_repeats_are_found_and_fresh_grain_is_not_a_repeat():
    frames, pattern = woven_clip(20, pattern=step_printed(20))
    # one repeat carries coding noise (±1 code of 8 bits here and there): still the same picture
    rng = np.random.default_rng(3)
    noisy = next(i for i in range(1, len(pattern)) if pattern[i] == pattern[i - 1])
    frames[noisy] = frames[noisy] + (rng.random(frames[noisy].shape) < 0.1) * np.float32(1 / 255)
    found = find_repeats(enumerate(frames))
    truth = {i: i - 1 for i in range(1, len(pattern)) if pattern[i] == pattern[i - 1]}
    assert found.originals == truth
    # a locked-off clip of distinct pictures (fresh grain only, no weave) has none
    still, _ = woven_clip(20, grain=0.004, seed=2)
    scene = still[0]
    rng = np.random.default_rng(4)
    quiet = [np.clip(scene + rng.normal(0, 0.004, scene.shape).astype(np.float32), 0, 1) for _ in range(20)]
    assert len(find_repeats(enumerate(quiet))) == 0


def test_runs_map_to_their_first_frame_and_never_cross_a_shot_start():
    frames, _ = woven_clip(4, pattern=[0, 1, 1, 1, 2, 3, 3])
    found = find_repeats(enumerate(frames), shots=[Shot(0, 5), Shot(5, 7)])
    assert found.originals == {2: 1, 3: 1, 6: 5}
    frames, _ = woven_clip(3, pattern=[0, 1, 1, 2])
    assert find_repeats(enumerate(frames), shots=[Shot(0, 2), Shot(2, 4)]).originals == {}


def test_windows_run_over_unique_pictures_mirrored_in_the_shot():
    shot = Shot(10, 20)
    repeats = RepeatMap({12: 11, 13: 11, 16: 15})
    assert repeats.unique(shot) == [10, 11, 14, 15, 17, 18, 19]
    assert repeats.window(13, 2, shot) == [11, 10, 11, 14, 15]  # mirrored at the shot start, as mirror_index does
    assert repeats.window(16, 1, shot) == [14, 15, 17]
    assert repeats.reach(12, 17, 2, shot) == (10, 19)
    assert RepeatMap().window(10, 2, shot) == [12, 11, 10, 11, 12]
    assert pickle.loads(pickle.dumps(repeats)) == repeats
    assert RepeatMap.from_json(repeats.to_json()) == repeats


def _pairs(pattern: list[int]) -> list[tuple[int, int]]:
    return [(i - 1, i) for i in range(1, len(pattern)) if pattern[i] == pattern[i - 1]]


def test_pipeline_gives_a_repeated_pair_identical_outputs_through_stabilize_and_deflicker():
    frames, pattern = woven_clip(24, pattern=step_printed(24))
    settings = settings_for(["stabilize", "deflicker"], {"deflicker": {"window": 3}})
    pipeline = Pipeline(ArraySource(frames), settings, shots=[Shot(0, len(frames))])
    out = [frame for _, frame in pipeline.frames()]
    assert _pairs(pattern)
    for a, b in _pairs(pattern):
        assert np.array_equal(out[a], out[b]), (a, b)
    # without folding (each repeat its own picture), stabilize and deflicker would give the pair different bytes
    unfolded = Pipeline(ArraySource(frames), settings, shots=[Shot(0, len(frames))], repeats=RepeatMap())
    plain = [frame for _, frame in unfolded.frames()]
    assert any(not np.array_equal(plain[a], plain[b]) for a, b in _pairs(pattern))


def _write_sequence(folder: Path, frames: list[np.ndarray]) -> Path:
    folder.mkdir(parents=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"f_{i:04d}.png"), (frame[..., ::-1] * 65535 + 0.5).astype(np.uint16))
    return folder


def test_render_engine_keeps_pairs_identical_across_chunk_boundaries_and_matches_the_pipeline(tmp_path):
    from restoration.io import open_source
    from restoration.io.pixels import float_to_int

    frames, pattern = woven_clip(22, pattern=step_printed(22))
    clip = _write_sequence(tmp_path / "clip", frames)
    project = Project()
    project.source = str(clip)
    project.stages["stabilize"] = StageSetting(True, {})
    project.stages["deflicker"] = StageSetting(True, {"window": 3})
    pairs = _pairs(pattern)
    chunk = 5
    assert any(a // chunk != b // chunk for a, b in pairs), "a pair must straddle a chunk boundary"
    render_project(project, tmp_path / "tiffs", workers=1, chunk_frames=chunk)
    written = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED)[..., ::-1]
               for p in sorted((tmp_path / "tiffs").glob("*.tif*"))]
    assert len(written) == len(frames)
    for a, b in pairs:
        assert np.array_equal(written[a], written[b]), (a, b)
    with open_source(str(clip)) as source:
        pipeline = Pipeline(source, project.stages)
        for index in (0, pairs[0][1], pairs[2][0], pairs[2][1], len(frames) - 1):
            assert np.array_equal(written[index], float_to_int(pipeline.frame(index), 16)), index
