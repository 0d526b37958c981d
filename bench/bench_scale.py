"""Benchmark of a challenge partition at several sizes: time per video and peak memory of each asset.

Generates a challenge for each of ``--sizes`` videos (default 3, 12 and 48: 4x apart)
with the testkit generator (one performer per video, the performers in turn, each video
as long as the sound plus its shift), re-encoded to TikTok's shape (``--width`` x
``--height`` at ``--fps``, default 720x1280 at 30 fps; the generator draws 360x640 at
15 fps). Each challenge is registered in its own home (DuckDB tables, local objects, a
Dagster instance), then every partitioned asset is materialised, in graph order, in a
fresh child process (``execute_in_process`` on the asset alone, its upstream read from
the home).

Per asset and size it measures three nested times: the child's wall time (process
start, the code location's import, the run), the run (``execute_in_process``: Dagster's
run set-up and tear-down around the steps) and the asset's steps (their durations in
the run's event log, checks included: the work of the asset, its model loading and its
I/O; the resources are set up before the first step, so the GPU resource's import of torch
is in the run, not the steps). Fixed costs per run hide linearity in seconds per video (a
20 s start-up is 6.7 s per video at 3 videos and 0.4 s at 48), so the table prints, for
the steps and for the child:

- seconds per video at each size;
- the marginal seconds per video between consecutive sizes, ``(T_b - T_a) / (n_b - n_a)``,
  and the ratio of the last marginal to the first (linear: within 1.2x; with two sizes
  there is one marginal and no ratio);
- the fixed cost per run, the intercept of a least-squares line of T against n;
- the child's peak resident set size (``getrusage``: the import, ~0.4 GB, included) at
  each size and its growth between consecutive sizes, beside the growth of the faces.

Goals (issue 17): linear time (marginals within 1.2x), peak RSS growth under 1.5x for
4x the faces.

A child per asset is what makes the peak per asset: ``ru_maxrss`` never goes down,
so one process running every asset would report the largest asset's peak for all
that follow; tracemalloc would miss torch's and ffmpeg's native memory.

    PYTHONPATH=tests .venv/bin/python bench/bench_scale.py [--sizes 3 12 48] [--workdir DIR]
    (development on a shared machine: --sizes 1 2 4 --width 360 --height 640 --fps 15)

A kept ``--workdir`` reuses the videos generated there before (each home is rebuilt): the
generation of 720p videos is a large part of a first run. The children import torch,
Dagster and the code location afresh: without compiled bytecode (``PYTHONDONTWRITEBYTECODE``
set and a venv installed without ``--compile-bytecode``) each compiles them again, tens of
seconds per child that no deployment pays; the bench warns then.

Without compiled bytecode a profiled ``unique_faces`` child spent 43 of its 81 s in
``compile()`` (2-core machine shared with other jobs); ``make install`` now installs with
``--compile-bytecode``. The table for the sizes above is in the README's "Performance at
scale".
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIB = 2**20
GENERATED = "generated.json"
"""Written in a size's challenge folder once its videos are generated: what a kept ``--workdir`` reuses."""


def generate(out: Path, name: str, videos: int, width: int, height: int, fps: int) -> Path:
    """A challenge of ``videos`` one-performer videos at ``width`` x ``height``, ``fps``; its challenge.yaml
    (reused when ``out`` holds one generated with the same shape)."""
    import ffmpeg
    import yaml

    from tiktokfer_assets.testkit.generator import VideoPlan, available_people, build_challenge

    shape = {"videos": videos, "width": width, "height": height, "fps": fps}
    marker = out / GENERATED
    if marker.exists() and json.loads(marker.read_text()) == shape:
        return out / "challenge.yaml"
    shutil.rmtree(out, ignore_errors=True)
    people = available_people()
    creator, performers = people[-1], people[:-1]
    plans = [
        VideoPlan(f"v{k:03d}", [performers[k % len(performers)]], shift_s=round(0.2 * (k % 7), 1))
        for k in range(videos)
    ]
    generated = build_challenge(out, name=name, seed=videos, creator=creator, plans=plans)
    for plan in plans:
        path = out / "videos" / f"{plan.video_id}.mp4"
        upscaled = path.with_suffix(".tiktok.mp4")
        source = ffmpeg.input(str(path))
        video = source.video.filter("scale", width, height).filter("fps", fps)
        ffmpeg.output(
            video, source.audio, str(upscaled), vcodec="libx264", preset="veryfast", crf=23,
            pix_fmt="yuv420p", acodec="copy", movflags="+faststart",
        ).global_args("-threads", "2").overwrite_output().run(quiet=True)
        upscaled.replace(path)
    definition = yaml.safe_load(generated.challenge_yaml.read_text())
    definition["max_videos"] = max(definition["max_videos"], videos)
    generated.challenge_yaml.write_text(yaml.safe_dump(definition, sort_keys=False))
    assert generated.challenge_yaml == out / "challenge.yaml"
    marker.write_text(json.dumps(shape))
    return generated.challenge_yaml


def uncompiled(modules: tuple[str, ...] = ("torch", "dagster", "polars")) -> list[str]:
    """Those of ``modules`` without compiled bytecode beside their source: each child would compile them
    again (under ``PYTHONDONTWRITEBYTECODE``, nothing is cached), seconds that no deployment pays."""
    import importlib.util

    return [name for name in modules
            if not Path(importlib.util.cache_from_source(importlib.util.find_spec(name).origin)).exists()]


def child_environment(home: Path) -> dict[str, str]:
    return {**os.environ, "TIKTOKFER_ENV": "local", "TIKTOKFER_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
            "TIKTOKFER_EXECUTOR": "in_process"}


def register(challenge_yaml: Path, home: Path) -> str:
    import yaml

    shutil.rmtree(home, ignore_errors=True)
    (home / "dagster").mkdir(parents=True)
    (home / "dagster" / "dagster.yaml").touch()
    subprocess.run([sys.executable, "-m", "tiktokfer_assets.cli", "challenge", "add", str(challenge_yaml)],
                   env=child_environment(home), cwd=ROOT, check=True, capture_output=True)
    return yaml.safe_load(challenge_yaml.read_text())["name"]


def run_asset(asset: str, challenge: str) -> dict:
    """In a child: materialise ``asset`` (its keys, comma-separated) of ``challenge``; the seconds of the
    import, the run and its steps (from the event log), and the peak RSS."""
    started = time.perf_counter()
    from dagster import AssetKey, DagsterInstance

    from tiktokfer_assets.automation.jobs import ALL_ASSETS_JOB
    from tiktokfer_assets.definitions import QUIET, defs, loaded

    imported = time.perf_counter()
    instance = DagsterInstance.get()
    job = loaded(defs).resolve_job_def(ALL_ASSETS_JOB)
    run_started = time.perf_counter()
    result = job.execute_in_process(partition_key=challenge, instance=instance, run_config=QUIET,
                                    asset_selection=[AssetKey.from_user_string(key) for key in asset.split(",")])
    finished = time.perf_counter()
    if not result.success:
        raise RuntimeError(f"{asset} of {challenge} failed")
    steps = instance.get_run_step_stats(result.run_id)
    return {"import": imported - started, "definitions": run_started - imported, "run": finished - run_started,
            "steps": sum(step.end_time - step.start_time for step in steps),
            "step_keys": [step.step_key for step in steps],
            "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def measure(asset: str, challenge: str, home: Path) -> dict:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--child", asset, challenge], env=child_environment(home),
                          cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"{asset} of {challenge} failed:\n{done.stderr[-3000:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "child": wall}


def faces_of(challenge: str, home: Path) -> int:
    probe = ("from tiktokfer_assets.environments import local_resources;"
             f"print(local_resources()['table_store'].count('faces', {challenge!r}))")
    done = subprocess.run([sys.executable, "-c", probe], env=child_environment(home), cwd=ROOT,
                          capture_output=True, text=True)
    return int(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else -1


def linearity(sizes: list[int], seconds: list[float]) -> dict:
    """Seconds per video at each size, marginal seconds per video between consecutive sizes, the ratio of
    the last marginal to the first (None with one marginal) and the fitted fixed cost (the intercept of
    a least-squares line of seconds against videos)."""
    import numpy as np

    marginals = [(t_b - t_a) / (n_b - n_a) for n_a, n_b, t_a, t_b in zip(sizes, sizes[1:], seconds, seconds[1:])]
    _, fixed = np.polyfit(sizes, seconds, 1)
    return {"per_video": [t / n for n, t in zip(sizes, seconds)], "marginals": marginals,
            "ratio": marginals[-1] / marginals[0] if len(marginals) > 1 and marginals[0] > 0 else None,
            "fixed": float(fixed)}


def print_table(assets: list[str], sizes: list[int], results: dict[int, dict[str, dict]],
                faces: dict[int, int]) -> None:
    def cells(values: list[float], width: int = 7) -> str:
        return " ".join(f"{value:{width}.2f}" for value in values)

    def ratio(value: float | None) -> str:
        return f"{value:6.2f}" if value is not None else f"{'-':>6}"

    n = len(sizes)
    per = " ".join(f"{f'/v@{size}':>7}" for size in sizes)
    marg = " ".join(f"{f'm{a}-{b}':>7}" for a, b in zip(sizes, sizes[1:]))
    rss = " ".join(f"{f'MiB@{size}':>7}" for size in sizes)
    growth = " ".join(f"{f'x{a}-{b}':>7}" for a, b in zip(sizes, sizes[1:]))
    print(f"{'asset':<16} {'time':<5} {per} {marg} {'m ratio':>7} {'fixed s':>7}   {rss} {growth}")
    totals = {"steps": [0.0] * n, "child": [0.0] * n}
    for asset in assets:
        for kind in ("steps", "child"):
            seconds = [results[size][asset][kind] for size in sizes]
            totals[kind] = [total + s for total, s in zip(totals[kind], seconds)]
            fit = linearity(sizes, seconds)
            line = (f"{asset if kind == 'steps' else '':<16} {kind:<5} {cells(fit['per_video'])} "
                    f"{cells(fit['marginals'])} {ratio(fit['ratio']):>7} {fit['fixed']:7.1f}")
            if kind == "steps":
                peaks = [results[size][asset]["peak_rss"] / MIB for size in sizes]
                growths = [b / a for a, b in zip(peaks, peaks[1:])]
                line += f"   {' '.join(f'{peak:7,.0f}' for peak in peaks)} {cells(growths)}"
            print(line)
    for kind in ("steps", "child"):
        fit = linearity(sizes, totals[kind])
        print(f"{'all assets' if kind == 'steps' else '':<16} {kind:<5} {cells(fit['per_video'])} "
              f"{cells(fit['marginals'])} {ratio(fit['ratio']):>7} {fit['fixed']:7.1f}")
    if min(faces.values()) > 0:
        print("faces grew " + ", ".join(f"{faces[b] / faces[a]:.2f}x from {a} to {b} videos"
                                        for a, b in zip(sizes, sizes[1:])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[3, 12, 48], help="videos per challenge, at least two")
    parser.add_argument("--width", type=int, default=720)
    parser.add_argument("--height", type=int, default=1280)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="kept afterwards, its generated videos reused (default: a temporary folder)")
    parser.add_argument("--child", nargs=2, metavar=("ASSET", "CHALLENGE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_asset(*args.child)))
        return
    sizes = sorted(set(args.sizes))
    if len(sizes) < 2:
        parser.error("--sizes needs at least two different sizes")
    if missing := uncompiled():
        print(f"warning: no compiled bytecode for {', '.join(missing)}: every child compiles them again; first run "
              f"{sys.executable} -m compileall -q -j 0 {Path(sys.prefix) / 'lib'} {ROOT / 'tiktokfer_assets'}",
              flush=True)

    from tiktokfer_assets.definitions import ASSETS

    # an asset and the others its op writes (videos and video_failures), by the op's name
    keys = {asset.node_def.name: ",".join(key.to_user_string() for key in asset.keys) for asset in ASSETS}
    assets = list(keys)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        work = args.workdir or Path(tmp)
        results: dict[int, dict[str, dict]] = {}
        faces: dict[int, int] = {}
        for size in sizes:
            started = time.perf_counter()
            challenge_yaml = generate(work / f"scale{size}", f"scale{size}", size, args.width, args.height, args.fps)
            home = work / f"home{size}"
            challenge = register(challenge_yaml, home)
            print(f"{size} videos generated and registered in {time.perf_counter() - started:.0f} s", flush=True)
            results[size] = {}
            for asset in assets:
                measured = results[size][asset] = measure(keys[asset], challenge, home)
                print(f"  {asset:<16} child {measured['child']:6.1f} s (import {measured['import']:4.1f}, "
                      f"definitions {measured['definitions']:4.1f}, run {measured['run']:6.1f}, "
                      f"steps {measured['steps']:6.1f} in {len(measured['step_keys'])})", flush=True)
            faces[size] = faces_of(challenge, home)
    print(f"\n{args.width}x{args.height} {args.fps} fps; "
          + ", ".join(f"{size} videos ({faces[size]} faces)" for size in sizes))
    print("per asset: seconds per video (/v@n), marginal seconds per video between sizes (ma-b), last marginal / "
          "first (m ratio), fitted fixed seconds per run; 'steps' is the asset's steps in the event log, 'child' its "
          "whole process; peak RSS of the process (MiB@n) and its growth between sizes (xa-b)\n")
    print_table(assets, sizes, results, faces)


if __name__ == "__main__":
    main()
