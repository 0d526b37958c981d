"""Benchmark of a challenge partition at two sizes: time per video and peak memory of each asset.

Generates two challenges of ``--sizes`` videos (default 4 and 16: 4x apart) with the
testkit generator (one performer per video, the performers in turn, each video as long
as the sound plus its shift), re-encoded to TikTok's shape (``--width`` x ``--height``
at ``--fps``, default 720x1280 at 30 fps; the generator draws 360x640 at 15 fps). Each
challenge is registered in its own home (DuckDB tables, local objects, a Dagster
instance), then every partitioned asset is materialised, in graph order, in a fresh
child process (``execute_in_process`` on the asset alone, its upstream read from the
home). Per asset and size it prints the wall seconds of the materialisation divided by
the number of videos (the code location's import is outside; model loading is inside,
once per run) and the child's peak resident set size (``getrusage`` of the child: the
import, ~0.5 GB, included; the memory above the import is printed too), side by side
with the ratios. Goals (issue 17): time per video within 1.2x between the sizes, peak
RSS growth under 1.5x for 4x the faces.

A child per asset is what makes the peak per asset: ``ru_maxrss`` never goes down,
so one process running every asset would report the largest asset's peak for all
that follow; tracemalloc would miss torch's and ffmpeg's native memory.

    PYTHONPATH=tests .venv/bin/python bench/bench_scale.py [--sizes 4 16] [--workdir DIR]
    (a bigger machine: --sizes 20 80)

Measured (2-core machine under load 8-12, ``--sizes 1 4``: 41 and 105 faces): 308 / 71 s per
video (the run's fixed costs dominate), peak RSS ratio 1.00-1.22 per asset (faces 1.22); the
table is in the README's "Performance at scale".
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ffmpeg
import yaml

from tiktokfer_assets.testkit.generator import VideoPlan, available_people, build_challenge

ROOT = Path(__file__).resolve().parents[1]
MIB = 2**20


def generate(out: Path, name: str, videos: int, width: int, height: int, fps: int) -> Path:
    """A challenge of ``videos`` one-performer videos at ``width`` x ``height``, ``fps``; its challenge.yaml."""
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
    return generated.challenge_yaml


def child_environment(home: Path) -> dict[str, str]:
    return {**os.environ, "TIKTOKFER_ENV": "local", "TIKTOKFER_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
            "TIKTOKFER_EXECUTOR": "in_process"}


def register(challenge_yaml: Path, home: Path) -> str:
    (home / "dagster").mkdir(parents=True, exist_ok=True)
    (home / "dagster" / "dagster.yaml").touch()
    subprocess.run([sys.executable, "-m", "tiktokfer_assets.cli", "challenge", "add", str(challenge_yaml)],
                   env=child_environment(home), cwd=ROOT, check=True, capture_output=True)
    return yaml.safe_load(challenge_yaml.read_text())["name"]


def run_asset(asset: str, challenge: str) -> dict:
    """In a child: materialise ``asset`` (its keys, comma-separated) of ``challenge``; its wall time,
    RSS after the import and peak RSS."""
    from dagster import AssetKey, DagsterInstance

    from tiktokfer_assets.automation.jobs import ALL_ASSETS_JOB
    from tiktokfer_assets.definitions import QUIET, defs, loaded

    imported_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    job = loaded(defs).resolve_job_def(ALL_ASSETS_JOB)
    started = time.perf_counter()
    result = job.execute_in_process(partition_key=challenge, instance=DagsterInstance.get(), run_config=QUIET,
                                    asset_selection=[AssetKey.from_user_string(key) for key in asset.split(",")])
    seconds = time.perf_counter() - started
    if not result.success:
        raise RuntimeError(f"{asset} of {challenge} failed")
    return {"seconds": seconds, "imported_rss": imported_rss,
            "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def measure(asset: str, challenge: str, home: Path) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", asset, challenge], env=child_environment(home),
                          cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{asset} of {challenge} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def faces_of(challenge: str, home: Path) -> int:
    probe = ("from tiktokfer_assets.environments import local_resources;"
             f"print(local_resources()['table_store'].count('faces', {challenge!r}))")
    done = subprocess.run([sys.executable, "-c", probe], env=child_environment(home), cwd=ROOT,
                          capture_output=True, text=True)
    return int(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[4, 16])
    parser.add_argument("--width", type=int, default=720)
    parser.add_argument("--height", type=int, default=1280)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--workdir", type=Path, default=None, help="kept afterwards (default: a temporary folder)")
    parser.add_argument("--child", nargs=2, metavar=("ASSET", "CHALLENGE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_asset(*args.child)))
        return

    from tiktokfer_assets.definitions import ASSETS

    # an asset and the others its op writes (videos and video_failures), by the op's name
    keys = {asset.node_def.name: ",".join(key.to_user_string() for key in asset.keys) for asset in ASSETS}
    assets = list(keys)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        work = args.workdir or Path(tmp)
        results: dict[int, dict[str, dict]] = {}
        faces: dict[int, int] = {}
        for size in args.sizes:
            started = time.perf_counter()
            challenge_yaml = generate(work / f"scale{size}", f"scale{size}", size, args.width, args.height, args.fps)
            home = work / f"home{size}"
            challenge = register(challenge_yaml, home)
            print(f"{size} videos generated and registered in {time.perf_counter() - started:.0f} s", flush=True)
            results[size] = {}
            for asset in assets:
                results[size][asset] = measure(keys[asset], challenge, home)
                print(f"  {asset:<16} {results[size][asset]['seconds']:7.1f} s", flush=True)
            faces[size] = faces_of(challenge, home)
    small, large = args.sizes
    print(f"\n{args.width}x{args.height} {args.fps} fps; {small} videos ({faces[small]} faces) vs "
          f"{large} videos ({faces[large]} faces); peak RSS of the asset's process (above its import)")
    print(f"{'asset':<16} {'s/video':>8} {'s/video':>8} {'ratio':>6}   {'peak MiB':>16} {'peak MiB':>16} {'ratio':>12}")
    for asset in assets:
        a, b = results[small][asset], results[large][asset]
        per_a, per_b = a["seconds"] / small, b["seconds"] / large
        above_a, above_b = (a["peak_rss"] - a["imported_rss"]) / MIB, (b["peak_rss"] - b["imported_rss"]) / MIB
        print(f"{asset:<16} {per_a:8.2f} {per_b:8.2f} {per_b / per_a:6.2f}   "
              f"{a['peak_rss'] / MIB:7,.0f} (+{above_a:5,.0f}) {b['peak_rss'] / MIB:7,.0f} (+{above_b:5,.0f}) "
              f"{b['peak_rss'] / a['peak_rss']:5.2f} ({above_b / max(above_a, 1):4.2f})")
    total_a = sum(r["seconds"] for r in results[small].values()) / small
    total_b = sum(r["seconds"] for r in results[large].values()) / large
    print(f"{'all assets':<16} {total_a:8.2f} {total_b:8.2f} {total_b / total_a:6.2f}")


if __name__ == "__main__":
    main()
