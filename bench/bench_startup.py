"""Benchmark of importing the code location, against a baseline commit, in the same run.

Extracts ``tiktokfer_assets`` of ``--baseline`` (default ``main``) with ``git archive``
into a temporary folder, then imports ``tiktokfer_assets.definitions`` in fresh
interpreters, alternating baseline and working tree ``--repeats`` times (default 3),
and prints per side the median wall time, the median CPU time (user + system of the
child: less sensitive to other load on the machine), which heavy libraries were
loaded, and the ratios.

    .venv/bin/python bench/bench_startup.py [--baseline main] [--repeats 3]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ["torch", "torch._dynamo", "torchvision", "hdbscan", "sklearn", "dagster_aws", "boto3", "open_clip"]
PROBE = ("import json, sys, tiktokfer_assets.definitions; "
         f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")


def import_once(package_root: Path) -> tuple[float, float, list[str]]:
    """(wall s, CPU s, heavy modules loaded) of one import in a fresh interpreter with ``package_root`` first."""
    env = {**os.environ, "PYTHONPATH": str(package_root)}
    before = os.times()
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=package_root, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = os.times()
    if done.returncode:
        raise RuntimeError(f"import failed under {package_root}: {done.stderr.strip().splitlines()[-1]}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu, json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="main")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "archive", args.baseline, "tiktokfer_assets", "weights", "deploy"],
                                 cwd=ROOT, capture_output=True, check=True).stdout
        tarfile.open(fileobj=io.BytesIO(archive)).extractall(tmp, filter="data")
        sides = {f"baseline ({args.baseline})": Path(tmp), "working tree": ROOT}
        runs: dict[str, list[tuple[float, float, list[str]]]] = {name: [] for name in sides}
        for _ in range(args.repeats):
            for name, root in sides.items():
                runs[name].append(import_once(root))
    medians = {}
    for name, samples in runs.items():
        wall, cpu = statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)
        medians[name] = (wall, cpu)
        print(f"{name:>24}: wall {wall:6.2f} s, CPU {cpu:6.2f} s, heavy modules loaded: {samples[-1][2]}")
    (base_wall, base_cpu), (new_wall, new_cpu) = medians.values()
    print(f"{'working tree / baseline':>24}: wall {new_wall / base_wall:.2f}, CPU {new_cpu / base_cpu:.2f}")


if __name__ == "__main__":
    main()
