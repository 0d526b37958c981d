"""A bounded, prefetching pipeline around a model: CPU work on a thread pool, the model on batches.

:func:`pipelined` runs three stages over a sequence of items, batch by batch:

1. ``load`` (per item, on the pool): fetch and decode, e.g. a frame JPEG from the object store;
2. ``run`` (per batch, on ``model_threads`` threads): the model, e.g. the detector on the
   batch's images;
3. ``finish`` (per item, on the pool): the work on the model's answer, e.g. cutting, aligning and
   encoding the face crops and storing them.

While the model runs on batch ``k``, the pool decodes the next ``depth`` batches and finishes
batch ``k-1``, so a GPU waits for neither the decoder nor the writer. Threads, not processes:
Pillow's decode, warp and encode and torch release the GIL, and nothing is pickled. Memory is
bounded by ``depth + model_threads + 1`` batches. Results come back in item order; an exception
in any stage is raised in the caller (the pending work is cancelled).

On CPU the model runs data-parallel instead (:func:`model_parallelism`): one batch per core at once,
each on one torch thread. Measured on this 2-core machine shared with other jobs (load 8),
RetinaFace with torch's two intra-op threads took 80-300 CPU-ms per frame against 21-29 with one
(its threads wait on each other at every layer when the cores are busy), MobileFaceNet 45-52
CPU-ms per face against 23-24; two Python threads each on one torch thread cost the same CPU
per frame as one (24-25 ms).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

Item = TypeVar("Item")
Loaded = TypeVar("Loaded")
Answer = TypeVar("Answer")
Out = TypeVar("Out")

PREFETCH_BATCHES = 2
"""Batches loaded ahead of those the model runs on."""


def cpu_cores() -> int:
    """CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextmanager
def model_parallelism(device) -> Iterator[int]:
    """How many batches a model on torch ``device`` runs at once in :func:`pipelined`: on CPU one per core,
    with torch on one intra-op thread while the block runs (restored after); on a GPU one."""
    import torch

    if torch.device(device).type != "cpu":
        yield 1
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield cpu_cores()
    finally:
        torch.set_num_threads(before)


def pipelined(
    items: Sequence[Item],
    load: Callable[[Item], Loaded],
    run: Callable[[list[Loaded]], Sequence[Answer]],
    finish: Callable[[Item, Loaded, Answer], Out],
    batch_size: int,
    model_threads: int = 1,
    depth: int = PREFETCH_BATCHES,
) -> Iterator[Out]:
    """``finish(item, load(item), answer)`` for each item, in order, where ``run`` answers a batch of
    ``batch_size`` loaded items at once (one answer per item). See the module docstring."""
    if batch_size < 1 or depth < 1 or model_threads < 1:
        raise ValueError(f"batch_size, depth and model_threads must be >= 1: {batch_size}, {depth}, {model_threads}")
    batches = [items[start : start + batch_size] for start in range(0, len(items), batch_size)]

    def run_batch(futures: list[Future]) -> tuple[list, Sequence]:
        loaded = [future.result() for future in futures]
        answers = run(loaded)
        if len(answers) != len(loaded):
            raise RuntimeError(f"the model answered {len(answers)} of a batch of {len(loaded)}")
        return loaded, answers

    pool = ThreadPoolExecutor(cpu_cores(), thread_name_prefix="pipeline")
    models = ThreadPoolExecutor(model_threads, thread_name_prefix="pipeline-model")
    running: deque[tuple[Sequence[Item], Future]] = deque()
    finishing: deque[list[Future]] = deque()
    try:
        for batch in batches:
            running.append((batch, models.submit(run_batch, [pool.submit(load, item) for item in batch])))
            if len(running) <= depth + model_threads - 1:
                continue
            yield from _finished(running, finishing, pool, finish)
        while running:
            yield from _finished(running, finishing, pool, finish)
        while finishing:
            yield from (future.result() for future in finishing.popleft())
    finally:
        models.shutdown(wait=True, cancel_futures=True)
        pool.shutdown(wait=True, cancel_futures=True)


def _finished(running: deque, finishing: deque, pool: ThreadPoolExecutor, finish: Callable) -> Iterator:
    """Hand the oldest batch the model ran on to ``finish`` on the pool, and yield the batch finished before."""
    batch, future = running.popleft()
    loaded, answers = future.result()
    finishing.append([pool.submit(finish, *args) for args in zip(batch, loaded, answers)])
    if len(finishing) > 1:
        yield from (done.result() for done in finishing.popleft())
