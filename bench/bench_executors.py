"""Benchmark of the step executors on the demo challenge, in the same run: in-process vs multiprocess.

Generates the demo challenge once, then for each executor registers it in a fresh home and runs
``tiktokfer materialize`` in a child process: ``in_process`` (one process for the run),
``multiprocess`` with ``TIKTOKFER_START_METHOD=spawn`` (each step a fresh interpreter that imports
the code location, torch and its models) and ``multiprocess`` with the default fork server (steps
forked from a server that imported the code location, torch and what more than one step imports once:
tiktokfer_assets/forkserver.py). Prints wall seconds, CPU seconds of the child and its reaped descendants (a fork
server that is not reaped is missing from it: wall time is the measure), the ratio to in-process, and whether each
printed the same summary.

Measured on 2 cores, loaded (load average 4-7 from other sessions), the fork server and in-process variants run one
after the other: before tiktokfer_assets/forkserver.py 527 s against 285 s (x1.85; earlier, less loaded: 176 s
against 43 s, x4.1), after it 201 s against 148 s (x1.35). The load inflates the models' seconds more than the
per-step ones, so a quiet machine gives a larger ratio: measure there.

    PYTHONPATH=tests .venv/bin/python bench/bench_executors.py [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIKTOKFER = Path(sys.executable).with_name("tiktokfer")
VARIANTS = [("in_process", "in_process", None), ("multiprocess, spawn", "multiprocess", "spawn"),
            ("multiprocess, fork server", "multiprocess", "forkserver")]


def materialize(challenge_yaml: Path, home: Path, executor: str, start_method: str | None) -> tuple[float, float, str]:
    """(wall s, CPU s, printed summary) of registering and materialising the challenge in a fresh ``home``."""
    (home / "dagster").mkdir(parents=True)
    (home / "dagster" / "dagster.yaml").touch()
    env = {**os.environ, "TIKTOKFER_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
           "TIKTOKFER_EXECUTOR": executor}
    if start_method:
        env["TIKTOKFER_START_METHOD"] = start_method
    subprocess.run([TIKTOKFER, "challenge", "add", str(challenge_yaml)], env=env, check=True, capture_output=True)
    before, start = os.times(), time.perf_counter()
    done = subprocess.run([TIKTOKFER, "materialize", "bench"], env=env, capture_output=True, text=True, cwd=ROOT)
    wall, after = time.perf_counter() - start, os.times()
    if done.returncode:
        raise SystemExit(f"{executor}/{start_method}: exit {done.returncode}: {done.stderr.strip().splitlines()[-1]}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    summary = "\n".join(line for line in done.stdout.splitlines() if str(home) not in line)
    return wall, cpu, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None, help="kept afterwards (default: a temporary folder)")
    args = parser.parse_args()
    from tiktokfer_assets.testkit.generator import build_challenge

    with tempfile.TemporaryDirectory(prefix="tiktokfer-bench-executors-") as tmp:
        work = args.workdir or Path(tmp)
        generated = build_challenge(work / "challenge", name="bench", seed=0)
        results = {label: materialize(generated.challenge_yaml, work / label.replace(", ", "-").replace(" ", "_"),
                                      executor, method) for label, executor, method in VARIANTS}
    base_wall, base_cpu, base_summary = results["in_process"]
    print(f"{'executor':28} {'wall s':>8} {'CPU s':>8} {'wall x':>7} {'CPU x':>7}  same summary")
    for label, (wall, cpu, summary) in results.items():
        print(f"{label:28} {wall:8.1f} {cpu:8.1f} {wall / base_wall:7.2f} {cpu / base_cpu:7.2f}  "
              f"{summary == base_summary}")


if __name__ == "__main__":
    main()
