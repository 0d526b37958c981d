"""The prefetching pipeline: answers in item order, bounded memory, errors raised in the caller."""

from __future__ import annotations

import threading

import pytest
import torch

from tiktokfer_assets.vision.pipeline import cpu_cores, model_parallelism, pipelined


@pytest.mark.parametrize("model_threads", [1, 3])
def test_answers_come_back_in_item_order_with_bounded_items_in_flight(model_threads):
    lock, in_flight, most = threading.Lock(), [0], [0]

    def load(item: int) -> int:
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        return item * 10

    def finish(item: int, loaded: int, answer: int) -> tuple[int, int, int]:
        with lock:
            in_flight[0] -= 1
        return item, loaded, answer

    out = list(pipelined(list(range(103)), load, lambda batch: [x + 1 for x in batch], finish, 4, model_threads))
    assert out == [(i, i * 10, i * 10 + 1) for i in range(103)]  # 26 batches, the last of 3
    assert most[0] <= (2 + model_threads + 1) * 4, most[0]  # loading, running and finishing batches only


@pytest.mark.parametrize("stage", ["load", "run", "finish"])
def test_an_error_in_any_stage_is_raised_in_the_caller(stage):
    def fail_at(name):
        def fn(*args):
            if name == stage and 7 in (args[0] if name == "run" else args[:1]):
                raise OSError(f"{name} broke")
            return args[0] if name != "finish" else args[2]
        return fn

    with pytest.raises(OSError, match=f"{stage} broke"):
        list(pipelined(list(range(20)), fail_at("load"), fail_at("run"), fail_at("finish"), 3))


def test_a_model_answering_too_few_is_an_error():
    with pytest.raises(RuntimeError, match="answered 1 of a batch of 2"):
        list(pipelined([1, 2], lambda x: x, lambda batch: batch[:1], lambda *args: args, 2))


def test_cpu_models_run_one_batch_per_core_on_one_torch_thread():
    before = torch.get_num_threads()
    with model_parallelism("cpu") as parallel:
        assert parallel == cpu_cores() and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
