"""The download pool's scheduling: bounded concurrency, order, retries with backoff, progress, skips.

The source here is a scripted implementation of the VideoSource protocol (it writes
real files and raises the FetchErrors it is told to), so each test knows exactly
which attempt fails how. The real yt-dlp source goes through the same pool in
tests/test_ytdlp_source.py.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest

from tiktokfer_assets.sources.base import FetchedVideo, FetchError, VideoRef
from tiktokfer_assets.sources.download_pool import Progress, backoff_delay, fetch_all


class ScriptedSource:
    """Fetches succeed unless ``script[video_id]`` lists errors to raise on the first attempts."""

    def __init__(self, script: dict[str, list[Exception]] | None = None, barrier: threading.Barrier | None = None,
                 seconds_per_fetch: float = 0.0):
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.barrier = barrier
        self.seconds_per_fetch = seconds_per_fetch
        self.calls: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()

    def list_videos(self, limit: int) -> list[VideoRef]:
        return [VideoRef(f"v{i:02d}", f"mem://v{i:02d}") for i in range(limit)]

    def fetch(self, ref: VideoRef, dest_dir: Path) -> FetchedVideo:
        with self.lock:
            self.calls.append(ref.video_id)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            errors = self.script.get(ref.video_id)
            error = errors.pop(0) if errors else None
        try:
            if self.barrier is not None:
                self.barrier.wait()
            if error is not None:
                raise error
            time.sleep(self.seconds_per_fetch)
            path = dest_dir / f"{ref.video_id}.mp4"
            path.write_bytes(ref.video_id.encode())
            return FetchedVideo(ref=ref, path=path)
        finally:
            with self.lock:
                self.in_flight -= 1


def test_concurrency_is_bounded_and_outcomes_keep_the_order_of_refs(tmp_path: Path) -> None:
    workers = 3
    source = ScriptedSource(barrier=threading.Barrier(workers, timeout=60))  # every round needs 3 at once
    refs = source.list_videos(12)
    outcomes = fetch_all(source, refs, tmp_path, workers=workers)
    assert [o.ref for o in outcomes] == refs
    assert all(o.fetched.path.read_text() == o.ref.video_id and o.attempts == 1 for o in outcomes)
    assert source.max_in_flight == workers


def test_transient_errors_are_retried_with_growing_jittered_backoff(tmp_path: Path) -> None:
    source = ScriptedSource({"v00": [FetchError("HTTP 503", transient=True)] * 2,
                             "v01": [FetchError("HTTP 429", transient=True)] * 10})
    delays: list[float] = []
    outcomes = fetch_all(source, source.list_videos(2), tmp_path, workers=1, backoff_s=1.0,
                         backoff_max_s=3.0, sleep=delays.append, rng=random.Random(0))
    ok, gave_up = outcomes
    assert ok.error is None and ok.attempts == 3
    assert gave_up.fetched is None and gave_up.attempts == 4
    assert gave_up.error == "HTTP 429 (gave up after 4 attempts)"
    # v00 waits after attempts 1 and 2, v01 after attempts 1, 2 and 3 (capped at 3 s).
    assert len(delays) == 5
    for delay, (low, high) in zip(delays, [(0.5, 1), (1, 2), (0.5, 1), (1, 2), (1.5, 3)]):
        assert low <= delay <= high


def test_permanent_errors_are_recorded_at_once(tmp_path: Path) -> None:
    source = ScriptedSource({"v01": [FetchError("This post is private", transient=False)]})
    delays: list[float] = []
    outcomes = fetch_all(source, source.list_videos(3), tmp_path, sleep=delays.append)
    assert [o.error for o in outcomes] == [None, "This post is private", None]
    assert outcomes[1].attempts == 1 and delays == [] and source.calls.count("v01") == 1


def test_progress_and_skips(tmp_path: Path) -> None:
    source = ScriptedSource({"v03": [FetchError("removed")]})
    seen: list[Progress] = []
    outcomes = fetch_all(source, source.list_videos(7), tmp_path, workers=2, on_progress=seen.append,
                         progress_every=3, skip=lambda ref: ref.video_id in {"v00", "v05"})
    assert [o.skipped for o in outcomes] == [True, False, False, False, False, True, False]
    assert sorted(source.calls) == ["v01", "v02", "v03", "v04", "v06"]
    assert [p.done + p.failed + p.skipped for p in seen] == [3, 6, 7]
    assert seen[-1] == Progress(done=4, failed=1, skipped=2, total=7)
    assert str(seen[-1]) == "7/7 videos: 4 done, 1 failed, 2 skipped"


def test_unexpected_errors_propagate(tmp_path: Path) -> None:
    source = ScriptedSource({"v02": [OSError(28, "No space left on device")]}, seconds_per_fetch=0.1)
    with pytest.raises(OSError, match="No space left"):
        fetch_all(source, source.list_videos(20), tmp_path, workers=1)
    assert len(source.calls) < 10  # the downloads queued after the fault were cancelled


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    refs = [VideoRef("a", "mem://1"), VideoRef("b", "mem://2"), VideoRef("a", "mem://3")]
    with pytest.raises(ValueError, match="repeated: a"):
        fetch_all(ScriptedSource(), refs, tmp_path)


def test_backoff_delay_is_exponential_capped_and_jittered() -> None:
    rng = random.Random(1)
    for attempt, full in [(1, 2.0), (2, 4.0), (3, 8.0), (4, 10.0), (9, 10.0)]:
        samples = [backoff_delay(attempt, 2.0, 10.0, rng) for _ in range(200)]
        assert full / 2 <= min(samples) and max(samples) <= full
        assert max(samples) - min(samples) > full / 4  # really jittered
