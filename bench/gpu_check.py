"""The expression model's CUDA path, for a session that is lent a GPU for a few minutes.

On ``media/expressions`` (the bench's split, seed 0: 396 train, 132 val, 132 test):
fine-tunes ``--backbone`` for ``--epochs`` on CUDA (bfloat16 autocast, as the asset
does), then predicts the 132 test photos on CUDA and again with the same weights on
the CPU, and checks the two agree (:data:`CUDA_CPU_ATOL` on every probability,
:data:`CUDA_CPU_ARGMAX_AGREEMENT` of the predicted classes) and that the model beats
chance. Prints training images per second, the GPU's utilisation and memory
(sampled with ``nvidia-smi`` during training) and torch's peak allocation. Exit
status 0 when all hold, 1 when one fails; without CUDA it prints ``no CUDA`` and
exits 0. ``tests/test_expression_model.py::test_cuda_training_and_prediction_match_cpu``
(marker ``gpu``) checks the same tolerances on its smaller split.

    PYTHONPATH=tests .venv/bin/python bench/gpu_check.py [--backbone retinaface] [--epochs 5]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import threading

import numpy as np
import torch

from tiktokfer_assets.assets.expression_model import backbone_weights
from tiktokfer_assets.expression.backbones import BACKBONES
from tiktokfer_assets.expression.data import decode, labelled_photos, split_by_file
from tiktokfer_assets.expression.metrics import classification_metrics
from tiktokfer_assets.expression.settings import DEFAULT_BACKBONE, TrainConfig
from tiktokfer_assets.expression.train import (
    CUDA_CPU_ARGMAX_AGREEMENT,
    CUDA_CPU_ATOL,
    predict_proba,
    train_classifier,
)
from tiktokfer_assets.paths import media_dir

SAMPLE_EVERY_S = 0.5


class GpuSampler:
    """``nvidia-smi`` utilisation (%) and memory (MiB) samples taken in a thread while the block runs."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        query = ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits", "-i", "0"]
        while not self._stop.wait(SAMPLE_EVERY_S):
            out = subprocess.run(query, capture_output=True, text=True, check=True).stdout.split(",")
            self.samples.append((float(out[0]), float(out[1])))

    def __enter__(self) -> GpuSampler:
        if shutil.which("nvidia-smi"):
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def summary(self) -> str:
        if not self.samples:
            return "GPU utilisation: not sampled (no nvidia-smi)"
        util, memory = np.array(self.samples).T
        return (f"GPU utilisation {util.mean():.0f} % mean, {util.max():.0f} % max over {len(util)} samples; "
                f"memory used up to {memory.max():.0f} MiB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default=DEFAULT_BACKBONE, choices=sorted(BACKBONES))
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA: torch sees no CUDA device; nothing to check (exit 0)")
        return 0
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}")

    parts = split_by_file(labelled_photos(media_dir() / "expressions"), seed=0)
    classes = sorted(set(parts["train"].labels))
    crops = {split: decode(images.paths) for split, images in parts.items()}
    labels = {split: torch.tensor([classes.index(c) for c in images.labels]) for split, images in parts.items()}
    config = TrainConfig(backbone=args.backbone, epochs=args.epochs, patience=args.epochs)
    with GpuSampler() as sampler:
        result = train_classifier(
            crops["train"], labels["train"], crops["val"], labels["val"], classes, config,
            backbone_weights(args.backbone), device="cuda",
            progress=lambda e: print(f"  epoch {e.epoch}: loss {e.train_loss:.3f}, val macro-F1 "
                                     f"{e.val_macro_f1:.3f}, {e.images_per_s:.0f} images/s", flush=True),
        )
    print(f"training: {result.images_per_s:.0f} images/s on {result.device}; {sampler.summary()}; "
          f"torch peak allocation {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")

    on_cuda = predict_proba(result.model, crops["test"])
    on_cpu = predict_proba(result.model.cpu(), crops["test"])
    max_diff = float(np.abs(on_cuda - on_cpu).max())
    agreement = float((on_cuda.argmax(1) == on_cpu.argmax(1)).mean())
    f1 = classification_metrics(labels["test"], on_cuda.argmax(1), classes)["macro_f1"]
    checks = {
        f"CUDA vs CPU probabilities: max |diff| {max_diff:.2e} <= {CUDA_CPU_ATOL:g}": max_diff <= CUDA_CPU_ATOL,
        f"CUDA vs CPU classes: {agreement:.1%} agree >= {CUDA_CPU_ARGMAX_AGREEMENT:.0%}":
            agreement >= CUDA_CPU_ARGMAX_AGREEMENT,
        f"test macro-F1 {f1:.3f} > chance {1 / len(classes):.3f}": f1 > 1 / len(classes),
    }
    for line, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'} {line}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
