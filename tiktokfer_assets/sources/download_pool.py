"""Fetch many videos from a source with bounded concurrency and retries.

Downloads are I/O-bound (the remote host's latency and bandwidth dominate), so a
small thread pool gives a near-linear speed-up until the host or the link is the
bottleneck. Each video is retried with exponential backoff and jitter, but only for
transient errors (:class:`FetchError` with ``transient=True``: rate limits, 5xx,
timeouts); a permanent error (private, removed, not a video) is recorded at once.
Waiting is done with ``sleep`` in the worker that owns the retry, never by polling.
Any other exception is a bug or a local fault (disk full): it cancels the pending
downloads and propagates.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tiktokfer_assets.sources.base import INVALID, FetchedVideo, FetchError, VideoRef, VideoSource

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchOutcome:
    """What became of one ref: ``fetched`` on success, ``error`` on failure, neither when skipped."""

    ref: VideoRef
    fetched: FetchedVideo | None
    error: str | None
    attempts: int

    @property
    def skipped(self) -> bool:
        return self.fetched is None and self.error is None


@dataclass(frozen=True)
class Progress:
    """Counts after ``done + failed + skipped`` of ``total`` refs have finished."""

    done: int
    failed: int
    skipped: int
    total: int

    def __str__(self) -> str:
        finished = self.done + self.failed + self.skipped
        return f"{finished}/{self.total} videos: {self.done} done, {self.failed} failed, {self.skipped} skipped"


def backoff_delay(attempt: int, backoff_s: float, backoff_max_s: float, rng: random.Random) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    Exponential (``backoff_s * 2**(attempt-1)``, capped at ``backoff_max_s``) with
    "equal jitter": half the delay is fixed, half random, so workers that failed
    together (a rate limit hits them all) do not come back in lockstep.
    """
    delay = min(backoff_max_s, backoff_s * 2 ** (attempt - 1))
    return delay / 2 + rng.uniform(0, delay / 2)


def fetch_one(
    source: VideoSource,
    ref: VideoRef,
    dest_dir: Path,
    *,
    max_attempts: int,
    backoff_s: float,
    backoff_max_s: float,
    sleep: Callable[[float], None],
    rng: random.Random,
) -> FetchOutcome:
    """Fetch ``ref`` with up to ``max_attempts`` tries, backing off between transient failures."""
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
    attempt = 0
    while True:
        attempt += 1
        try:
            return FetchOutcome(ref, source.fetch(ref, dest_dir), None, attempt)
        except FetchError as exc:
            if not exc.transient:
                return FetchOutcome(ref, None, str(exc), attempt)
            if attempt == max_attempts:
                return FetchOutcome(ref, None, f"{exc} (gave up after {attempt} attempts)", attempt)
            delay = backoff_delay(attempt, backoff_s, backoff_max_s, rng)
            log.info("%s: transient failure (attempt %d/%d), retrying in %.1f s: %s",
                     ref.video_id, attempt, max_attempts, delay, exc)
            sleep(delay)


def fetch_all(
    source: VideoSource,
    refs: Sequence[VideoRef],
    dest_dir: Path,
    *,
    workers: int = 4,
    max_attempts: int = 4,
    backoff_s: float = 1.0,
    backoff_max_s: float = 30.0,
    on_progress: Callable[[Progress], None] | None = None,
    progress_every: int = 10,
    skip: Callable[[VideoRef], bool] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> list[FetchOutcome]:
    """Fetch ``refs`` into ``dest_dir`` on at most ``workers`` threads; outcomes in the order of ``refs``.

    ``skip(ref)`` (run in the worker, so slow checks such as "already stored?" run in
    parallel too) marks a ref as skipped without fetching it. ``on_progress`` is
    called from the calling thread after every ``progress_every`` finished refs and
    once at the end, with the done/failed/skipped counts so far.
    """
    if workers < 1 or max_attempts < 1 or progress_every < 1:
        raise ValueError("workers, max_attempts and progress_every must be at least 1")
    ids = [ref.video_id for ref in refs]
    if len(set(ids)) != len(ids):
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"refs must have distinct video ids; repeated: {', '.join(duplicates)}")
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    rng = rng or random.Random()

    def work(ref: VideoRef) -> FetchOutcome:
        if INVALID in ref.info:  # the listing already knows it cannot be fetched
            return FetchOutcome(ref, None, ref.info[INVALID], 0)
        if skip is not None and skip(ref):
            return FetchOutcome(ref, None, None, 0)
        return fetch_one(source, ref, dest_dir, max_attempts=max_attempts, backoff_s=backoff_s,
                         backoff_max_s=backoff_max_s, sleep=sleep, rng=rng)

    results: list[FetchOutcome | None] = [None] * len(refs)
    counts = {"done": 0, "failed": 0, "skipped": 0}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch") as pool:
        index = {pool.submit(work, ref): i for i, ref in enumerate(refs)}
        try:
            for finished, future in enumerate(as_completed(index), start=1):
                outcome = future.result()
                results[index[future]] = outcome
                counts["skipped" if outcome.skipped else "failed" if outcome.error else "done"] += 1
                if on_progress is not None and (finished % progress_every == 0 or finished == len(refs)):
                    on_progress(Progress(total=len(refs), **counts))
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return [outcome for outcome in results if outcome is not None]
