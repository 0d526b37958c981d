"""Fetch many videos from a source with bounded concurrency and retries.

Downloads are I/O-bound (the remote host's latency and bandwidth dominate), so a
small thread pool gives a near-linear speed-up until the host or the link is the
bottleneck. Each video is retried with exponential backoff and jitter, but only for
transient errors (:class:`FetchError` with ``transient=True``: rate limits, 5xx,
timeouts); a permanent error (private, removed, not a video) is recorded at once.
Waiting is done with ``sleep`` in the worker that owns the retry, never by polling.
Any other exception is a bug or a local fault (disk full): it cancels the pending
downloads and propagates.

With a ``deadline_s`` every attempt runs in a child process (``forkserver``: a fork of
a small single-threaded server, a few ms), so that it can be killed: a host that
trickles a byte a second never ends a blocking read, and a thread cannot be stopped.
An attempt past its deadline is killed and recorded as a permanent failure; a run
interrupted while downloading (Dagster's terminate, SIGTERM, Ctrl-C) kills every
attempt at once and leaves no partial file. A child also exits by itself when its
parent dies or its deadline passes.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import multiprocessing.connection
import os
import random
import shutil
import tempfile
import threading
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


class Stopped(Exception):
    """The pool was stopped (its caller was interrupted) while this download waited or ran."""


class _Children:
    """The attempts running in child processes, so that a stop kills them all at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.live: set[multiprocessing.process.BaseProcess] = set()
        self.stopped = threading.Event()

    def start(self, process: multiprocessing.process.BaseProcess) -> None:
        with self.lock:
            if self.stopped.is_set():
                raise Stopped()
            process.start()
            self.live.add(process)

    def finish(self, process: multiprocessing.process.BaseProcess) -> None:
        with self.lock:
            self.live.discard(process)
        if process.pid is None:  # never started
            return
        if process.is_alive():
            process.kill()
        process.join()

    def stop(self) -> None:
        with self.lock:
            self.stopped.set()
            for process in self.live:
                process.kill()


def _fetch_in_child(source: VideoSource, ref: VideoRef, dest_dir: Path, result, parent_alive,
                    deadline_s: float) -> None:
    """Child process: fetch ``ref`` and send ``(ok, value)``; exit when the parent dies or the deadline passes."""

    def watchdog() -> None:
        parent_alive.poll(deadline_s)  # returns at the parent's end of the pipe closing, or at the deadline
        os._exit(3)

    threading.Thread(target=watchdog, daemon=True).start()
    try:
        result.send((True, source.fetch(ref, dest_dir)))
    except FetchError as exc:
        result.send((False, (str(exc), exc.transient)))
    except Exception as exc:  # a bug or a local fault: re-raised in the parent
        result.send((False, (f"{type(exc).__name__}: {exc}", None)))


def _fetch_isolated(source: VideoSource, ref: VideoRef, dest_dir: Path, deadline_s: float,
                    children: _Children) -> FetchedVideo:
    """``source.fetch(ref, dest_dir)`` in a child process killed after ``deadline_s`` seconds."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([type(source).__module__])  # imported once, by the server, when it starts
    receive, send = context.Pipe(duplex=False)
    alive_child, alive_parent = context.Pipe(duplex=False)
    attempt_dir = Path(tempfile.mkdtemp(prefix=f".{ref.video_id}-", dir=dest_dir))
    process = context.Process(target=_fetch_in_child, name=f"fetch-{ref.video_id}", daemon=True,
                              args=(source, ref, attempt_dir, send, alive_child, deadline_s))
    try:
        children.start(process)
        send.close()
        alive_child.close()
        outcome = None
        if multiprocessing.connection.wait([receive, process.sentinel], timeout=deadline_s):
            try:
                outcome = receive.recv()
            except EOFError:  # died without an answer: killed by a stop, or crashed
                if children.stopped.is_set():
                    raise Stopped() from None
                raise FetchError(f"{ref.url}: the download process died (exit code {process.exitcode})") from None
        if outcome is None:
            raise FetchError(f"{ref.url}: not downloaded within the {deadline_s:g} s deadline (video_deadline_s)")
        ok, value = outcome
        if ok:
            dest = dest_dir / value.path.name
            value.path.replace(dest)
            return dataclasses.replace(value, path=dest)
        message, transient = value
        if transient is None:
            raise RuntimeError(f"{ref.url}: {message}")
        raise FetchError(message, transient=transient)
    finally:
        children.finish(process)
        for end in (receive, alive_parent):
            end.close()
        shutil.rmtree(attempt_dir, ignore_errors=True)


def _within_size(fetched: FetchedVideo, max_bytes: int | None) -> FetchedVideo:
    size = fetched.path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        fetched.path.unlink()
        raise FetchError(f"{fetched.ref.url}: {size} bytes, more than the {max_bytes} allowed (max_video_bytes)")
    return fetched


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
    deadline_s: float | None = None,
    max_bytes: int | None = None,
    children: _Children | None = None,
) -> FetchOutcome:
    """Fetch ``ref`` with up to ``max_attempts`` tries, backing off between transient failures.

    With ``deadline_s``, each try runs in a child process killed at the deadline (see the module's docstring).
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
    children = children or _Children()
    attempt = 0
    while True:
        attempt += 1
        try:
            if children.stopped.is_set():
                raise Stopped()
            # a source that only copies local files (``local = True``) cannot hang: no process needed
            fetched = (source.fetch(ref, dest_dir) if deadline_s is None or getattr(source, "local", False)
                       else _fetch_isolated(source, ref, dest_dir, deadline_s, children))
            return FetchOutcome(ref, _within_size(fetched, max_bytes), None, attempt)
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
    sleep: Callable[[float], None] | None = None,
    rng: random.Random | None = None,
    deadline_s: float | None = None,
    max_bytes: int | None = None,
) -> list[FetchOutcome]:
    """Fetch ``refs`` into ``dest_dir`` on at most ``workers`` threads; outcomes in the order of ``refs``.

    ``deadline_s``: seconds one try of one video may take (its process is killed then);
    ``max_bytes``: a larger file is a permanent failure. ``sleep`` waits between retries
    (default: a wait that a stop cuts short).

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
    children = _Children()
    sleep = sleep or children.stopped.wait

    def work(ref: VideoRef) -> FetchOutcome:
        if INVALID in ref.info:  # the listing already knows it cannot be fetched
            return FetchOutcome(ref, None, ref.info[INVALID], 0)
        if skip is not None and skip(ref):
            return FetchOutcome(ref, None, None, 0)
        return fetch_one(source, ref, dest_dir, max_attempts=max_attempts, backoff_s=backoff_s,
                         backoff_max_s=backoff_max_s, sleep=sleep, rng=rng, deadline_s=deadline_s,
                         max_bytes=max_bytes, children=children)

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
            children.stop()  # kills the running attempts, so the workers return at once
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return [outcome for outcome in results if outcome is not None]
