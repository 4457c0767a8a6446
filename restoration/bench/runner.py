"""Run our stages and the open peers side by side on the corpus, score them, write `<stage>.json` and the report.

Per stage and clip every method gets the same degraded frames: `input` (the damage itself, as the baseline),
our stage (with its declared defaults; registered placeholders are reported as such, never run), then each peer.
Speed is the median of three timed runs on the stage's speed clip after a warm-up (the scoring run); peak RSS
is sampled while a method runs.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from restoration import metrics as M
from restoration.device import cpu_count
from restoration.bench import corpus as C
from restoration.bench.memory import tree_rss_mb
from restoration.bench import peers as P
from restoration.bench import scoring as S
from restoration.bench.scoring import TUNING_KEY, score
from restoration.bench.variants import OUR_VARIANTS, OURS, Variant, our_params

INPUT = "input"
PLACEHOLDER = "placeholder — not implemented yet"
STAGES = C.STAGES
CHAIN = C.CHAIN
BENCH_STAGES = (*STAGES, CHAIN)  # what --stage all runs
CHAIN_PARAMS = {"denoise": {"grain": "remove"}}  # as in the denoise bench; other stages at their defaults
TIMED_RUNS = 3
SPEED_FRAMES = 12  # frames of the speed clip each timed run processes (bounds the time of slow methods)
RSS_INTERVAL_S = 0.02

# The clip whose speed is reported (Vid4 city: 704×576 in the full run).
SPEED_CLIP: dict[str, str] = {"dust": "city-dust", "stabilize": "city-weave", "deflicker": "city-flicker",
                              "denoise": "city-grain", "color": "city-fade", "sr": "Vid4-city", CHAIN: "city-all"}

Log = Callable[[str], None]


# ------------------------------------------------------------------------------------------------------------
# measuring


class PeakRss:
    """Peak resident memory of this process and its children, sampled while the `with` block runs (MiB)."""

    def __init__(self, interval: float = RSS_INTERVAL_S) -> None:
        self.interval = interval
        self.baseline_mb = 0.0
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def current_mb() -> float:
        return tree_rss_mb()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_mb = max(self.peak_mb, self.current_mb())

    def __enter__(self) -> "PeakRss":
        self.baseline_mb = self.peak_mb = self.current_mb()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_mb = max(self.peak_mb, self.current_mb())

    @property
    def delta_mb(self) -> float:
        return self.peak_mb - self.baseline_mb


def machine_info() -> dict[str, Any]:
    """CPU model, cores usable by this process, memory, OS and Python."""
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {"cpu": model or "unknown", "cores": cpu_count(), "os": platform.platform(),
                            "python": platform.python_version()}
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2 ** 30, 1)
    except ImportError:  # pragma: no cover
        pass
    return info


def versions() -> dict[str, str]:
    """Versions of everything the figures depend on."""
    import cv2
    import scipy
    import skimage

    import restoration

    out = {"filmrestore": restoration.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
           "scikit-image": skimage.__version__, "opencv": cv2.__version__}
    try:
        import torch

        out["torch"] = torch.__version__
    except ImportError:  # pragma: no cover
        pass
    out.update(P.ffmpeg_versions())
    return out


# ------------------------------------------------------------------------------------------------------------
# methods


@dataclass
class Method:
    """One row of a stage's table: a name, how to run it, and the settings to run it with."""

    name: str
    kind: str                        # 'input' | 'ours' | 'peer'
    run: Callable[[list[np.ndarray], Mapping[str, Any], C.Clip], list[np.ndarray]]
    candidates: list[dict[str, Any]]
    tool: str = ""
    note: str = ""
    backend: str = ""
    status: str | None = None        # None when it runs; else why not (placeholder, unavailable)
    roles: tuple[str, ...] | None = None

    def describe(self) -> dict[str, Any]:
        return {"method": self.name, "kind": self.kind, "tool": self.tool, "note": self.note,
                "backend": self.backend, "status": self.status or "ok"}


def _per_still(run: Callable[[list[np.ndarray]], list[np.ndarray]], frames: list[np.ndarray],
               clip: C.Clip) -> list[np.ndarray]:
    """Stills of different sizes (SR sets) run one at a time; clips run whole."""
    if clip.stills:
        return [run([frame])[0] for frame in frames]
    return run(frames)


def our_method(stage: str, variant: Variant) -> Method:
    from restoration.stages import stage_class

    cls = stage_class(stage)

    def run(frames: list[np.ndarray], params: Mapping[str, Any], clip: C.Clip) -> list[np.ndarray]:
        from restoration.pipeline import run_stage_on_frames

        resolved = our_params(stage, variant, clip)
        return _per_still(lambda fs: run_stage_on_frames(stage, fs, resolved), frames, clip)

    status = None if cls.implemented else PLACEHOLDER
    return Method(variant.name, "ours", run, [dict(variant.params)], tool=f"FilmRestore {cls.title}",
                  note=variant.note, backend="restoration.pipeline", status=status, roles=variant.roles)


def chain_stages() -> list[str]:
    """The stages the chain runs: every implemented one but sr, in the fixed order."""
    from restoration.stages import stage_class

    return [name for name in STAGES if name != "sr" and stage_class(name).implemented]


def our_chain_method() -> Method:
    stages = chain_stages()

    def run(frames: list[np.ndarray], params: Mapping[str, Any], clip: C.Clip) -> list[np.ndarray]:
        from restoration.pipeline import ArraySource, Pipeline, settings_for

        wanted = {name: CHAIN_PARAMS.get(name, {}) for name in stages}
        pipeline = Pipeline(ArraySource(frames), settings_for(stages, wanted))
        return [frame for _, frame in pipeline.frames()]

    status = None if stages else PLACEHOLDER
    note = f"stages: {', '.join(stages)}" if stages else "no stage implemented yet"
    return Method(OURS, "ours", run, [{name: CHAIN_PARAMS.get(name, {}) for name in stages}],
                  tool="FilmRestore pipeline", note=note, backend="restoration.pipeline", status=status)


def peer_method(peer: P.Peer, quick: bool) -> Method:
    def run(frames: list[np.ndarray], settings: Mapping[str, Any], clip: C.Clip) -> list[np.ndarray]:
        merged = dict(settings) | ({"scale": clip.scale} if peer.stage == "sr" else {})
        return _per_still(lambda fs: peer.run(fs, merged), frames, clip)

    return Method(peer.name, "peer", run, peer.candidates(quick), tool=peer.tool, note=peer.note,
                  backend=peer.backend(), status=peer.unavailable())


def input_method() -> Method:
    return Method(INPUT, "input", lambda frames, settings, clip: list(frames), [{}], tool="the damaged input",
                  note="baseline: no processing")


def methods_for(stage: str, quick: bool) -> list[Method]:
    """Input baseline (not for SR, whose input is smaller), our stage and its variants, then every peer."""
    methods = [] if stage == "sr" else [input_method()]
    if stage == CHAIN:
        methods.append(our_chain_method())
    else:
        methods += [our_method(stage, v) for v in OUR_VARIANTS[stage]]
    methods += [peer_method(p, quick) for p in P.peers_for(stage)]
    return methods


# ------------------------------------------------------------------------------------------------------------
# running one stage


def _settings_text(settings: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in settings.items())


def _run_one(method: Method, settings: Mapping[str, Any], clip: C.Clip, stage: str, baseline: dict[str, Any],
             log: Log, tuning_only: bool = False) -> tuple[dict[str, Any], list[np.ndarray] | None]:
    record: dict[str, Any] = {"method": method.name, "clip": clip.name, "params": dict(settings),
                              "frames": len(clip.degraded), "size": list(clip.size), "metrics": {},
                              "fps": None, "fps_runs": 0, "rss_mb": None, "status": "ok"}
    if method.kind == "ours" and method.status is None and stage != CHAIN:
        variant = next(v for v in OUR_VARIANTS[stage] if v.name == method.name)
        record["params"] = our_params(stage, variant, clip)
    try:
        with PeakRss() as rss:
            start = time.perf_counter()
            output = method.run(list(clip.degraded), settings, clip)
            seconds = time.perf_counter() - start
        metrics, series = score(stage, clip, output, baseline, tuning_only=tuning_only)
    except P.PeerUnavailable as exc:
        record["status"] = str(exc)
        return record, None
    except Exception as exc:  # one failing method must not sink the whole benchmark; the report says so
        record["status"] = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
        log(f"  {method.name} on {clip.name} failed:\n{traceback.format_exc(limit=4)}")
        return record, None
    record.update(metrics=metrics, seconds=round(seconds, 4), rss_mb=round(rss.peak_mb, 1),
                  rss_delta_mb=round(rss.delta_mb, 1))
    if method.kind != "input":
        record.update(fps=round(len(clip.degraded) / seconds, 3) if seconds > 0 else None, fps_runs=1)
    if series:
        record["series"] = series
    if tuning_only:
        record["metrics_scope"] = "tuning"
    return record, output


def _rescore(record: dict[str, Any], output: list[np.ndarray], clip: C.Clip, stage: str,
             baseline: dict[str, Any], log: Log) -> None:
    """Full metrics for an output that a sweep scored for tuning only."""
    try:
        metrics, series = score(stage, clip, output, baseline)
    except Exception as exc:
        record["status"] = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
        log(f"  {record['method']} on {clip.name} failed to score:\n{traceback.format_exc(limit=4)}")
        return
    record["metrics"] = metrics
    record.pop("metrics_scope", None)
    if series:
        record["series"] = series


def _time_speed(method: Method, settings: Mapping[str, Any], clip: C.Clip, record: dict[str, Any],
                warmup: int, runs: int = TIMED_RUNS) -> None:
    """Median of `runs` runs (after `warmup` more) on the first SPEED_FRAMES frames of the speed clip; peak RSS
    over them too."""
    frames = list(clip.degraded[:SPEED_FRAMES])
    with PeakRss() as rss:
        seconds = M.time_median(lambda: method.run(frames, settings, clip), runs=runs, warmup=warmup)
    record.update(fps=round(len(frames) / seconds, 3) if seconds > 0 else None, fps_runs=runs,
                  speed_frames=len(frames),
                  speed_clip=True, rss_mb=round(max(record.get("rss_mb") or 0.0, rss.peak_mb), 1),
                  rss_delta_mb=round(max(record.get("rss_delta_mb") or 0.0, rss.delta_mb), 1))


def _mean_key(records: list[dict[str, Any]], stage: str, clips: list[C.Clip]) -> float:
    metric, higher, roles = TUNING_KEY[stage]
    role_of = {c.name: c.role for c in clips}
    values = [r["metrics"].get(metric) for r in records if role_of.get(r["clip"]) in roles]
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return -math.inf
    mean = float(np.mean(values))
    return mean if higher else -mean


def bench_stage(stage: str, clips: list[C.Clip], quick: bool, log: Log = print,
                keep_film_frame: bool = True, timed_runs: int = TIMED_RUNS) -> dict[str, Any]:
    """Run every method on every clip of `stage`; return the stage's results (records, tuning, film crops)."""
    methods = methods_for(stage, quick)
    baselines: dict[str, dict[str, Any]] = {c.name: {} for c in clips}
    speed_name = SPEED_CLIP.get(stage)
    speed_clip = next((c for c in clips if c.name == speed_name), None)
    records: list[dict[str, Any]] = []
    tuning: dict[str, Any] = {}
    film_frames: dict[str, np.ndarray] = {}
    film_clip = next((c for c in clips if c.role == "film"), None)
    if film_clip is not None and keep_film_frame:
        film_frames[INPUT] = film_clip.degraded[len(film_clip.degraded) // 2]

    for method in methods:
        my_clips = [c for c in clips if method.roles is None or c.role in method.roles]
        if quick and method.kind == "ours" and method.name != OURS:
            my_clips = [c for c in my_clips if c.name == speed_name]  # --quick: variants on the speed clip only
        if method.status is not None:
            log(f"[{stage}] {method.name}: {method.status}")
            for clip in my_clips:
                records.append({"method": method.name, "clip": clip.name, "params": method.candidates[0],
                                "metrics": {}, "fps": None, "fps_runs": 0, "rss_mb": None,
                                "status": method.status, "selected": True})
            continue
        sweeping = len(method.candidates) > 1
        tuning_roles = TUNING_KEY[stage][2]
        # a sweep runs every setting on the tuning clips only; the selected setting then does the rest
        sweep_clips = [c for c in my_clips if c.role in tuning_roles] if sweeping else my_clips
        film: dict[str, np.ndarray] = {}

        def run_on(settings: dict[str, Any], clip_list: list[C.Clip], tuning_only: bool = False
                   ) -> tuple[list[dict[str, Any]], list[list[np.ndarray] | None]]:
            done, outputs = [], []
            for clip in clip_list:
                t0 = time.perf_counter()
                record, output = _run_one(method, settings, clip, stage, baselines[clip.name], log, tuning_only)
                log(f"[{stage}] {method.name} {_settings_text(settings)} on {clip.name}: "
                    f"{record['status']} ({time.perf_counter() - t0:.1f} s)")
                if output is not None and clip is film_clip and keep_film_frame:
                    film[method.name] = output[len(output) // 2]
                done.append(record)
                outputs.append(output if tuning_only else None)
            return done, outputs

        runs: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        best, best_outputs = 0, []
        for settings in method.candidates:
            done, outputs = run_on(settings, sweep_clips, tuning_only=sweeping)
            runs.append((settings, done))
            if len(runs) == 1 or _mean_key(done, stage, clips) > _mean_key(runs[best][1], stage, clips):
                best, best_outputs = len(runs) - 1, outputs  # keep only the leader's frames
        if sweeping:
            for record, output, clip in zip(runs[best][1], best_outputs, sweep_clips):
                if output is not None:
                    _rescore(record, output, clip, stage, baselines[clip.name], log)
            best_outputs = []
            metric, higher, _ = TUNING_KEY[stage]
            tuning[method.name] = {"metric": metric, "higher_is_better": higher, "selected": runs[best][0],
                                   "candidates": [{"params": s, "score": _score_or_none(_mean_key(rs, stage, clips),
                                                                                        higher)}
                                                  for s, rs in runs]}
        for i, (_, these) in enumerate(runs):
            for record in these:
                record["selected"] = i == best
            records.extend(these)
        settings, chosen = runs[best]
        if sweeping:
            rest, _ = run_on(settings, [c for c in my_clips if c not in sweep_clips])
            for record in rest:
                record["selected"] = True
            records.extend(rest)
            chosen = chosen + rest
        film_frames.update(film)
        timed = method.kind == "peer" or method.name == OURS  # variants keep the fps of their scoring run
        if timed and speed_clip is not None:
            record = next((r for r in chosen if r["clip"] == speed_clip.name and r["status"] == "ok"), None)
            if record is not None:
                # the scoring run just made was the warm-up, unless a sweep ran other settings since
                _time_speed(method, settings, speed_clip, record, warmup=1 if sweeping else 0, runs=timed_runs)
                log(f"[{stage}] {method.name} speed on {speed_clip.name}: {record['fps']} fps")
    if stage == "denoise":
        _regrain_levels(methods, clips, records, log)
    return {"methods": [m.describe() for m in methods], "records": records, "tuning": tuning,
            "baselines": {name: {k: v for k, v in b.items() if isinstance(v, (int, float, list))}
                          for name, b in baselines.items()},
            "film_frames": film_frames, "speed_clip": speed_name}


def _regrain_levels(methods: list[Method], clips: list[C.Clip], records: list[dict[str, Any]], log: Log) -> None:
    """Add `regrain_level_pct` to our regrain records: the grain level with the picture the denoiser lost taken
    out (scoring.regrain_level_pct). Our remove and regrain variants run again (same bytes: deterministic), and
    remove once more on the clip with its grain negated."""
    by_name = {m.name: m for m in methods}
    remove, regrain = by_name.get(OURS), by_name.get(f"{OURS}-regrain")
    if remove is None or regrain is None or remove.status is not None or regrain.status is not None:
        return
    for record in records:
        clip = next((c for c in clips if c.name == record["clip"]), None)
        if record["method"] != regrain.name or record["status"] != "ok" or clip is None or clip.grain is None:
            continue
        start = time.perf_counter()
        removed = remove.run(list(clip.degraded), remove.candidates[0], clip)
        antithetic = remove.run(S.antithetic_input(clip), remove.candidates[0], clip)
        regrained = regrain.run(list(clip.degraded), regrain.candidates[0], clip)
        record["metrics"]["regrain_level_pct"] = S.regrain_level_pct(clip, regrained, removed, antithetic)
        log(f"[denoise] {regrain.name} grain level without the lost picture on {clip.name}: "
            f"{record['metrics']['regrain_level_pct']:.1f} % ({time.perf_counter() - start:.1f} s)")


def _score_or_none(value: float, higher: bool) -> float | None:
    if not math.isfinite(value):
        return None
    return value if higher else -value


# ------------------------------------------------------------------------------------------------------------
# the whole benchmark


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def default_out() -> Path:
    return repo_root() / "restoration" / "bench" / "results"


def default_report(out: Path) -> Path:
    """restoration/bench/REPORT.md for the default results folder; else REPORT.md inside `out`."""
    out = Path(out).resolve()
    if out == default_out().resolve():
        return repo_root() / "restoration" / "bench" / "REPORT.md"
    return out / "REPORT.md"


def _load_average() -> list[float] | None:
    """1/5/15-minute load averages: other processes on the same cores slow every method down alike."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # pragma: no cover - not on every platform
        return None


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(payload, indent=1, allow_nan=False) + "\n")
    os.replace(partial, path)


def run_bench(stage: str, quick: bool, out: Path, data: Path, *, profile: str | None = None,
              report: Path | None = None, cache_dir: Path | None = None, log: Log | None = None,
              timed_runs: int = TIMED_RUNS) -> dict[str, Any]:
    """Benchmark `stage` (or 'all'); write `<out>/<stage>.json` per stage and regenerate the report.

    `profile` overrides the corpus size ('full', 'quick', 'tiny'; default from `quick`); `report` defaults to
    restoration/bench/REPORT.md for the default `out`, else `<out>/REPORT.md`; figures go beside the report. `timed_runs`
    (default 3) is how many timed runs after the warm-up give each speed (tests may use 1).
    """
    from restoration.bench import report as R

    if stage != "all" and stage not in BENCH_STAGES:
        raise ValueError(f"unknown stage {stage!r} (choose from {', '.join(BENCH_STAGES)}, all)")
    log = log or (lambda text: print(text, file=sys.stderr, flush=True))
    data = Path(data)
    C.check_data(data)
    out = Path(out)
    profile_name = profile or ("quick" if quick else "full")
    cache_dir = Path(cache_dir) if cache_dir is not None else repo_root() / "restoration" / "bench" / "cache"
    report_path = Path(report) if report is not None else default_report(out)
    stages = list(BENCH_STAGES) if stage == "all" else [stage]
    common = {"date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"), "machine": machine_info(),
              "load_avg_start": _load_average(),
              "versions": versions(), "profile": profile_name, "quick": bool(quick), "data": str(data)}
    results: dict[str, Any] = {}
    for name in stages:
        started = time.perf_counter()
        clips = C.load_corpus(name, data, profile_name, cache_dir=cache_dir, progress=log)
        built = time.perf_counter() - started
        result = bench_stage(name, clips, quick, log=log, timed_runs=timed_runs)
        film_frames = result.pop("film_frames")
        if name == "dust" and profile_name != "tiny":  # the real films, looked at (issue 19)
            from restoration.bench import dust_realfilm

            result["real_film"] = dust_realfilm.measure(data, report_path.parent,
                                                        frames=None if profile_name == "full" else 12, log=log)
        if name == "sr":  # the CPU figures: ours beside the ncnn runtime, conv peak, one-frame RSS
            from restoration.bench import sr_speed

            result["cpu_speed"] = sr_speed.measure(profile_name, data, log)
        payload = {"stage": name, **common, "load_avg_end": _load_average(), "corpus_seconds": round(built, 2),
                   "seconds": round(time.perf_counter() - started, 2),
                   "corpus": [c.describe() for c in clips], **result}
        _write_json(out / f"{name}.json", payload)
        if film_frames:
            R.save_film_crops(out / f"film_{name}.npz", film_frames)
        results[name] = payload
        log(f"[{name}] done in {payload['seconds']:.1f} s → {out / f'{name}.json'}")
    R.write_report(out, report_path)
    return results


def run_render_section(out: Path, data: Path, report: Path | None = None, frames: int | None = None,
                       repeats: int | None = None, quick: bool = False, log: Log | None = None,
                       program: list[str] | None = None) -> dict[str, Any]:
    """`--stage render` (render_speed.py): measure, write `<out>/render.json`, regenerate the report."""
    from restoration.bench import render_speed
    from restoration.bench import report as R

    frames = render_speed.DEFAULT_FRAMES if frames is None else frames
    repeats = render_speed.DEFAULT_REPEATS if repeats is None else repeats
    if frames < 2 or repeats < 1:
        raise ValueError("the render section needs at least 2 frames and 1 repeat")
    log = log or (lambda text: print(text, file=sys.stderr, flush=True))
    C.check_data(data)
    out = Path(out)
    payload = {"stage": render_speed.SECTION, "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
               "machine": machine_info(), "versions": versions(), "profile": "quick" if quick else "full",
               "quick": bool(quick), "data": str(data),
               **render_speed.measure(Path(data), frames, repeats, quick, log, program)}
    _write_json(out / f"{render_speed.SECTION}.json", payload)
    R.write_report(out, Path(report) if report is not None else default_report(out))
    log(f"[render] done in {payload['seconds']:.1f} s → {out / f'{render_speed.SECTION}.json'}")
    return payload
