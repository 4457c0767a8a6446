"""The render section of the bench: command lines, FFmpeg graphs, progress and note parsing, the per-frame
arithmetic, the report section from a recorded result, and the kill-and-resume run against a stand-in renderer."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
import time
from pathlib import Path

import pytest

from restoration.bench import render_speed as R
from restoration.bench.report import write_report

FIXTURE = Path(__file__).parent / "fixtures" / "render_bench.json"

# Speaks the engine's planned contract: chunks of 6 frames kept in OUT.work/, the resume note, progress lines,
# FILMRESTORE_CALL_COUNTS (one handle frame on each inner chunk edge when more than one worker runs).
FAKE_ENGINE = textwrap.dedent('''
    import argparse, json, os, sys, time
    from pathlib import Path
    p = argparse.ArgumentParser()
    p.add_argument("command"); p.add_argument("source"); p.add_argument("-o", dest="out")
    p.add_argument("--stages"); p.add_argument("--progress-every")
    p.add_argument("--workers", type=int, default=2); p.add_argument("--ray"); p.add_argument("--fresh", action="store_true")
    a = p.parse_args()
    frames, size, delay = int(os.environ["FAKE_FRAMES"]), 6, float(os.environ.get("FAKE_DELAY", "0.03"))
    silent = os.environ.get("FAKE_SILENT") == "1"
    work = Path(a.out + ".work"); work.mkdir(exist_ok=True)
    chunks = [(s, min(s + size, frames)) for s in range(0, frames, size)]
    kept = [i for i in range(len(chunks)) if (work / f"{i}.done").exists() and not a.fresh]
    if kept:
        print(f"filmrestore: note: resuming: {len(kept)} of {len(chunks)} chunks kept", file=sys.stderr, flush=True)
    done = sum(e - s for i, (s, e) in enumerate(chunks) if i in kept)
    handle = 1 if (a.workers > 1 or a.ray) else 0
    calls = 0
    for i, (s, e) in enumerate(chunks):
        if i in kept:
            continue
        for _ in range(s, e):
            time.sleep(delay)
            done += 1
            if not silent:
                print(f"render: {done}/{frames} frames,   1.00 fps, ETA 00:01", file=sys.stderr, flush=True)
        calls += (e - s) + handle * ((i > 0) + (i < len(chunks) - 1))
        (work / f"{i}.done").write_text("")
    Path(a.out).write_bytes(b"fake")
    if os.environ.get("FILMRESTORE_CALL_COUNTS"):
        Path(os.environ["FILMRESTORE_CALL_COUNTS"]).write_text(json.dumps(
            {"frames": frames, "process": {s: calls for s in a.stages.split(",")}, "analyze": {"color": 1}}))
''')


@pytest.fixture
def fake_engine(tmp_path, monkeypatch) -> list[str]:
    script = tmp_path / "fake_filmrestore.py"
    script.write_text(FAKE_ENGINE)
    monkeypatch.setenv("FAKE_FRAMES", "24")
    return [sys.executable, str(script)]


def _recorded() -> dict:
    payload = json.loads(FIXTURE.read_text())
    payload["figures"] = R.figures(payload)
    return payload


# ------------------------------------------------------------------------------------------------------------
# the source and the command lines


def test_bounce_makes_a_longer_clip_without_a_jump():
    order = R.bounce_indices(34, 48)
    assert len(order) == 48 and order[:34] == list(range(34)) and order[34:] == list(range(32, 18, -1))
    assert max(abs(a - b) for a, b in zip(order, order[1:])) == 1
    assert R.bounce_indices(3, 7) == [0, 1, 2, 1, 0, 1, 2]
    assert R.bounce_indices(1, 3) == [0, 0, 0]


def test_render_commands_name_workers_ray_and_fresh():
    program = ["py", "-m", "restoration.cli"]
    one, two, ray = (R.render_command("src/f_%06d.png", "out.mkv", run, program=program) for run in R.OUR_RUNS)
    assert one == ["py", "-m", "restoration.cli", "render", "src/f_%06d.png", "-o", "out.mkv",
                   "--stages", "dust,stabilize,deflicker,denoise,color", "--progress-every", "0", "--workers", "1"]
    assert two[-2:] == ["--workers", "2"] and "--ray" not in two
    assert ray[-2:] == ["--ray", "local"] and "--workers" not in ray
    assert R.render_command("s", "o.mkv", R.OUR_RUNS[1], fresh=True)[-1] == "--fresh"
    assert R.render_command("s", "o.mkv", R.OUR_RUNS[0])[:3] == [sys.executable, "-m", "restoration.cli"]


def test_ffmpeg_chain_graphs_in_our_stage_order():
    levels = {"rimin": 0.1, "rimax": 0.9, "gimin": 0.2, "gimax": 0.8, "bimin": 0.05, "bimax": 0.95}
    detect, transform = R.chain_graphs("nlmeans", levels)
    assert detect == "tmedian=radius=1,format=yuv444p,vidstabdetect=result=transforms.trf:shakiness=5:accuracy=15"
    names = [step.split("=")[0] for step in transform.split(",") if not step.startswith("format")]
    assert names == ["tmedian", "vidstabtransform", "deflicker", "nlmeans", "colorlevels"]
    assert "colorlevels=bimax=0.950000:bimin=0.050000:gimax=0.800000:gimin=0.200000:rimax=0.900000:rimin=0.100000" \
        in transform
    _, hq = R.chain_graphs("hqdn3d", levels)
    assert "hqdn3d=luma_spatial=8.0:chroma_spatial=6.0:luma_tmp=12.0:chroma_tmp=9.0" in hq and "nlmeans" not in hq


def test_a_missing_filter_is_left_out_of_the_chain():
    have = set(R.CHAIN_FILTERS) - {"vidstabtransform"}
    detect, transform = R.chain_graphs("nlmeans", {}, have)
    assert detect is None and "vidstab" not in transform and "deflicker=" in transform
    commands = R.ffmpeg_commands("ffmpeg", "src/frame_%06d.png", "out.mkv", "nlmeans", {}, have)
    assert len(commands) == 1


def test_ffmpeg_commands_are_two_passes_with_an_ffv1_master():
    detect_pass, encode_pass = R.ffmpeg_commands("/usr/bin/ffmpeg", "src/frame_%06d.png", "out.mkv", "hqdn3d",
                                                 {"rimin": 0.0})
    for command in (detect_pass, encode_pass):
        assert command[0] == "/usr/bin/ffmpeg"
        assert command[command.index("-i") + 1] == "src/frame_%06d.png"
        assert command[command.index("-framerate") + 1] == "24"
    assert detect_pass[-3:] == ["-f", "null", "-"]
    assert "vidstabdetect" in detect_pass[detect_pass.index("-vf") + 1]
    assert encode_pass[encode_pass.index("-c:v") + 1] == "ffv1" and encode_pass[-1] == "out.mkv"
    assert encode_pass[encode_pass.index("-pix_fmt") + 1] == "gbrp16le"


def test_filter_list_parsing():
    text = textwrap.dedent("""\
        Filters:
          T.. = Timeline support
          | = Source or sink filter
         ... deflicker         V->V       Remove temporal frame luminance variations.
         TSC tmedian           V->V       Pick median pixels from successive frames.
         ... vidstabdetect     V->V       Extract relative transformations.
         ... abuffer           |->A       Buffer audio frames.
        """)
    assert R.parse_filter_list(text) == {"deflicker", "tmedian", "vidstabdetect", "abuffer"}


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="no ffmpeg binary")
def test_this_ffmpeg_lists_the_chain_filters_it_has():
    have = R.ffmpeg_filters(shutil.which("ffmpeg"))
    assert "null" in have and "scale" in have


# ------------------------------------------------------------------------------------------------------------
# what the render says


def test_progress_lines_plain_and_bar():
    assert R.parse_progress("render: 12/48 frames,   1.50 fps, ETA 00:24") == ("render", 12, 48)
    assert R.parse_progress("analyze stabilize: 3/48 frames,     -- fps, ETA --:--") == ("analyze stabilize", 3, 48)
    assert R.parse_progress("\r  render [#######-----] 20/48    1.20 fps  ETA 00:23 ") == ("render", 20, 48)
    assert R.parse_progress("filmrestore: note: resuming: 2 of 4 chunks kept") is None
    assert R.parse_progress("wrote out.mkv (48 frames, 1.2 fps)") is None


def test_render_fraction_ignores_cuts_and_analyses():
    lines = ["cuts: 48/48 frames, 90.00 fps, ETA 00:00", "render: 10/48 frames, 1.0 fps, ETA 00:38",
             "analyze denoise: 48/48 frames, 9.0 fps, ETA 00:00"]
    assert R.render_fraction(lines) == pytest.approx(10 / 48)
    assert R.render_fraction(lines[:1]) is None


def test_resume_note_parsing_tolerates_its_absence():
    assert R.parse_resume(["render: 1/4 frames", "filmrestore: note: resuming: 3 of 8 chunks kept"]) == \
        {"kept": 3, "chunks": 8, "recomputed": 5}
    assert R.parse_resume(["render: 1/4 frames"]) is None


# ------------------------------------------------------------------------------------------------------------
# arithmetic


def test_calls_per_frame_and_handle_overhead():
    figures = R.call_figures({"frames": 40, "process": {"dust": 44, "stabilize": 40, "deflicker": 42,
                                                        "denoise": 46, "color": 40}, "analyze": {"denoise": 2}})
    assert figures["per_frame"] == {"dust": 1.1, "stabilize": 1.0, "deflicker": 1.05, "denoise": 1.15, "color": 1.0}
    assert figures["extra_frames"]["denoise"] == 6
    assert figures["handle_overhead_pct"] == pytest.approx(100 * 12 / 200)
    assert figures["analyze"] == {"denoise": 2}
    missing = R.call_figures({"frames": 10, "process": {"dust": 10}})
    assert missing["per_frame"]["color"] == 0.0 and missing["analyze"] == {}


def test_medians_and_fps_over_repeats():
    runs = [{"status": "ok", "wall_s": 30.0, "peak_rss_mb": 500.0, "calls": None},
            {"status": "failed (exit 1): x", "wall_s": 1.0, "peak_rss_mb": 50.0},
            {"status": "ok", "wall_s": 20.0, "peak_rss_mb": 700.0, "calls": {"frames": 48}},
            {"status": "ok", "wall_s": 24.0, "peak_rss_mb": 600.0, "calls": None}]
    summary = R.with_fps(R.median_of(runs), 48)
    assert summary["wall_s"] == 24.0 and summary["fps"] == 2.0 and summary["repeats"] == 3
    assert summary["peak_rss_mb"] == 700.0 and summary["calls"] == {"frames": 48}
    assert R.median_of(runs[1:2])["status"].startswith("failed")


def test_figures_and_scaling_from_the_recorded_run():
    figures = _recorded()["figures"]
    assert figures["speedup_2_over_1"] == pytest.approx(1.6)
    assert figures["vs_ffmpeg"]["workers-2"]["nlmeans"] == pytest.approx(0.533, abs=1e-3)
    assert figures["vs_ffmpeg"]["workers-2"]["hqdn3d"] is None
    scaling = figures["scaling"]
    assert scaling["chunks"] == 4 and scaling["serial_share"] == pytest.approx(0.25)
    assert scaling["extra_per_boundary"] == pytest.approx(16 / 3, abs=0.01)
    # 1 / (0.25 + 0.75 / N), N capped at the 4 chunks
    assert scaling["predicted_speedup"] == {"2": 1.6, "4": 2.29, "8": 2.29, "16": 2.29}


def test_resume_figures_compare_the_rerun_with_a_full_run():
    record = {"rerun": {"wall_s": 30.0}, "full_wall_s": 60.0,
              "calls": R.call_figures({"frames": 48, "process": {s: 25 for s in R.CLEANING}})}
    assert R.resume_figures(record, 48) == {"rerun_vs_full": 0.5, "frames_recomputed": 25.0,
                                            "frames_recomputed_pct": pytest.approx(52.1)}
    assert R.resume_figures({"rerun": {"wall_s": None}, "calls": None}, 48) == {}


# ------------------------------------------------------------------------------------------------------------
# the report


def test_report_renders_the_render_section_from_a_recorded_result(tmp_path):
    (tmp_path / "render.json").write_text(json.dumps(_recorded()))
    text = write_report(tmp_path, tmp_path / "REPORT.md").read_text()
    section = text[text.index("## render"):]
    assert "| speed-up, `--workers 2` over `--workers 1` | ≥ 1.7× | 1.60× | no |" in section
    assert "| process calls per frame per stage, `workers-1` (worst stage) | 1.00 | 1.00 | yes |" in section
    assert "| process calls per frame per stage, `workers-2` (worst stage) | 1.00 | 1.17 | no |" in section
    assert "| fps, ours (`workers-2`) ÷ FFmpeg nlmeans chain | ≥ 1.0× (goal 2×) | 0.53× | no |" in section
    assert "| `workers-2` | ok | 0.64 | 75.0 | 1600 | 48/48 | dust 1.04, stabilize 1.04" in section
    assert "| `ray-local` | skipped: ray is not importable in this Python |" in section
    assert "| ffmpeg nlmeans chain | ok | 1.20 | 40.0 | 90 | 46/48 |" in section
    assert "| ffmpeg hqdn3d chain | failed (exit 1): ffmpeg said no |" in section
    assert "lacks vidstabdetect, vidstabtransform" in section
    assert "kept 2 of 4 chunks and recomputed 2" in section and "0.60× a full `workers-2` run" in section
    assert "at 52 % of the frames" in section
    assert "into 4 chunks" in section and "25 %" in section and "4 → 2.3×" in section
    assert "6.7 % more frames" in section
    lines = section.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| run |"))
    table = lines[header:lines.index("", header)]
    assert len(table) == 2 + 3 + 2 and {row.count("|") for row in table} == {table[0].count("|")}


def test_report_says_when_the_engine_prints_no_resume_note_or_counts(tmp_path):
    payload = json.loads(FIXTURE.read_text())
    payload["resume"]["resume"] = None
    for record in payload["ours"].values():
        record.pop("calls", None)
    payload["figures"] = R.figures(payload)
    (tmp_path / "render.json").write_text(json.dumps(payload))
    text = write_report(tmp_path, tmp_path / "REPORT.md").read_text()
    assert "printed no `resuming: K of M chunks kept` note" in text
    assert "chunk count is unknown" in text and "Handle overhead unknown" in text
    assert "| process calls per frame per stage, `workers-2` (worst stage) | 1.00 | — | — |" in text


# ------------------------------------------------------------------------------------------------------------
# running against a stand-in for the engine


def test_resume_kills_at_half_and_reads_the_rerun(fake_engine, tmp_path):
    record = R.measure_resume(R.OUR_RUNS[1], tmp_path / "src", tmp_path, 24, full_wall_s=1.0,
                              program=fake_engine, cwd=tmp_path)
    killed = record["first"]["killed"]
    assert killed["reason"] == "progress" and 0.5 <= killed["fraction"] < 1.0
    assert record["first"]["rc"] < 0
    assert record["rerun"]["status"] == "ok"
    note = record["resume"]
    assert note["chunks"] == 4 and 1 <= note["kept"] <= 3 and note["recomputed"] == 4 - note["kept"]
    # the rerun computed the chunks it did not keep, plus their handle frames
    assert 6 * note["recomputed"] <= record["frames_recomputed"] < 24
    assert record["command"][-2:] == ["--workers", "2"] and record["command"][1] == "SOURCE"
    assert not (tmp_path / "workers-2-resume.mkv").exists()  # outputs are cleared after measuring


def test_a_silent_render_is_killed_by_the_clock(fake_engine, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_SILENT", "1")
    result = R.run_timed(R.render_command("src", tmp_path / "o.mkv", R.OUR_RUNS[1], program=fake_engine),
                         kill_at=0.5, kill_after_s=0.3)
    assert result["killed"]["reason"] == "clock (no progress line)" and result["rc"] < 0
    assert 0.3 <= result["wall_s"] < 0.3 + 0.5 and result["left_behind"] == 0


def test_processes_a_command_leaves_in_its_group_are_ended(tmp_path):
    script = ("import subprocess, sys; "
              "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])")
    result = R.run_timed([sys.executable, "-c", script])
    assert result["rc"] == 0 and result["left_behind"] == 1
    time.sleep(0.2)
    assert R.group_members(result["pgid"]) == []


def test_a_full_run_reads_its_call_counts_and_tree_memory(fake_engine, tmp_path):
    record = R.measure_ours(R.OUR_RUNS[1], tmp_path / "src", tmp_path, "0", 24, fake_engine, tmp_path)
    assert record["status"] == "ok" and record["peak_rss_mb"] > 0 and record["wall_s"] >= 24 * 0.03
    # 4 chunks of 6, one handle frame on each side of the 3 inner edges
    assert record["calls"]["per_frame"]["dust"] == pytest.approx(30 / 24, abs=1e-4)
    assert record["calls"]["handle_overhead_pct"] == pytest.approx(25.0)
    one = R.measure_ours(R.OUR_RUNS[0], tmp_path / "src", tmp_path, "0", 24, fake_engine, tmp_path)
    assert one["calls"]["per_frame"]["color"] == 1.0


def test_a_render_that_refuses_its_flags_is_reported_failed(tmp_path):
    program = [sys.executable, "-c", "import sys; print('error: unrecognized arguments: --workers 2', "
               "file=sys.stderr); sys.exit(2)"]
    record = R.measure_ours(R.OUR_RUNS[1], tmp_path, tmp_path, "0", 24, program, tmp_path)
    assert record["status"] == "failed (exit 2): error: unrecognized arguments: --workers 2"
    assert record["calls"] is None


def test_the_section_writes_render_json_and_its_report_section(shared_data, fake_engine, tmp_path):
    from restoration.bench.runner import run_render_section

    out = tmp_path / "results"
    payload = run_render_section(out, shared_data, frames=6, quick=True, log=lambda s: None, program=fake_engine)
    assert payload["source"]["frames"] == 6 and payload["source"]["size"] == list(R.QUICK_CROP)
    assert json.loads((out / "render.json").read_text())["figures"] == payload["figures"]
    assert payload["ours"]["workers-1"]["status"] == "ok"
    assert payload["figures"]["speedup_2_over_1"] is not None
    if shutil.which("ffmpeg"):
        assert payload["ffmpeg"]["nlmeans"]["status"] == "ok" and payload["ffmpeg"]["nlmeans"]["frames_out"] == 4
    text = (out / "REPORT.md").read_text()
    assert "## render" in text and "**Scaling to N machines.**" in text
    assert list(tmp_path.glob("results/*.mkv")) == []
