"""Fine-tuning a backbone with a new head: weighted loss, early stopping on val, seeded, AMP on CUDA.

The whole network is trained (AdamW, ``head_lr`` for the head and ``backbone_lr`` for
the backbone; linear warm-up over ``warmup_epochs`` then cosine decay, per step), with
cross-entropy weighted by inverse class frequency (so a class with few faces counts as
much as a large one) and label smoothing, against the labels mixed as the images were
(``mix``: with MixUp the targets are soft, and the train accuracy counts a mixed image as
its larger share's class). After each epoch the model is evaluated on
val; of the epochs after the first ``select_after`` share of the schedule, the state with
the best val macro-F1 is kept, and training stops after ``patience`` of them without
improvement. Without a val split every epoch runs and the last state is kept.

The defaults (a random head, both at 1e-3, batch norm trained, TrivialAugmentWide then
MixUp of each batch, 60 epochs) are the recipe that transferred best on ``media/expressions``
(``bench/bench_expression.py``; README, "Expression model"). The alternative is LP-FT
(``head_init="probe"``): the head starts as the logistic-regression probe on the frozen
features (:mod:`probe`), its logits scaled to the probe's best val log-loss
(``calibrate_head``), and the state before the first epoch counts as epoch 0 (so the
kept model is never worse on val than the probe); it needs low rates and frozen batch
norm (``freeze_bn``) not to destroy that head, and with them the backbone barely moves.

Determinism: the run draws every random number (head initialisation, batch order,
augmentation, mixing, dropout) from torch's generator seeded with ``seed`` inside a forked
RNG state, so the caller's generator is untouched and two CPU runs with the same
inputs give the same weights. On CUDA, training runs under ``torch.autocast`` with
bfloat16 (no loss scaling needed); evaluation and prediction always run in float32.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tiktokfer_assets.expression.backbones import ExpressionNet
from tiktokfer_assets.expression.metrics import classification_metrics
from tiktokfer_assets.expression.preprocess import batch_mixing, eval_transform, train_transform
from tiktokfer_assets.expression.probe import Probe, fit_probe, frozen_features, head_weights, logit_scale
from tiktokfer_assets.expression.settings import TrainConfig

PREDICT_BATCH = 128
CUDA_CPU_ATOL = 2e-3
"""Largest difference allowed between a model's class probabilities on CUDA and on the CPU (cuDNN, TF32)."""
CUDA_CPU_ARGMAX_AGREEMENT = 0.95
"""Share of crops whose predicted class must be the same on CUDA and on the CPU."""
MEMORY_FORMAT = torch.channels_last
"""NHWC: about 2x faster than NCHW for these depthwise convolutions on CPU (forward and backward, measured)."""


@dataclass(frozen=True)
class EpochLog:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    val_macro_f1: float | None
    seconds: float
    images_per_s: float


@dataclass
class TrainResult:
    model: ExpressionNet
    classes: list[str]
    history: list[EpochLog] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    device: str = "cpu"
    probe: Probe | None = None
    """The logistic-regression probe the head started from (``head_init="probe"``)."""

    @property
    def images_per_s(self) -> float:
        """Training throughput (forward, backward, augmentation) over all epochs."""
        seconds = sum(e.seconds for e in self.history)
        return sum(e.images_per_s * e.seconds for e in self.history) / seconds if seconds else 0.0


def class_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``n / (k * count_c)`` per class (1 for every class when balanced); absent classes get 0."""
    counts = torch.bincount(labels, minlength=num_classes).float()
    present = counts > 0
    weights = torch.zeros(num_classes)
    weights[present] = len(labels) / (present.sum() * counts[present])
    return weights


@torch.inference_mode()
def predict_proba(model: ExpressionNet, crops: torch.Tensor, batch_size: int = PREDICT_BATCH) -> np.ndarray:
    """Class probabilities ``(N, classes)`` of ``uint8`` ``(N, 3, 112, 112)`` RGB crops, float32, eval mode."""
    model.eval()
    device = next(model.parameters()).device
    transform = eval_transform(model.input_size)
    out = np.empty((len(crops), model.head[-1].out_features), dtype=np.float32)
    for start in range(0, len(crops), batch_size):
        x = transform(crops[start : start + batch_size]).to(device, memory_format=MEMORY_FORMAT)
        out[start : start + len(x)] = model(x).float().softmax(dim=1).cpu().numpy()
    return out


def _copy_state(model: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def warmup_cosine(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """Learning-rate factor of step ``s``: linear from ``1/warmup`` to 1 over ``warmup_steps``, then cosine to 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def init_head_from_probe(
    model: ExpressionNet, train_crops, train_labels, val_crops, val_labels, classes, calibrate: bool
) -> Probe:
    """Fit the probe on the frozen features and copy it into the head's linear layer (the LP of LP-FT).

    ``calibrate``: its logits scaled by :func:`probe.logit_scale` on val (train without val)."""
    train_x, val_x = (frozen_features(model.features, model.input_size, c) for c in (train_crops, val_crops))
    probe = fit_probe(train_x, train_labels.numpy(), val_x, val_labels.numpy(), classes)
    scale = 1.0
    if calibrate:
        scale = logit_scale(probe, val_x, val_labels.numpy()) if len(val_x) else logit_scale(
            probe, train_x, train_labels.numpy())
    weight, bias = head_weights(probe, len(classes), scale)
    linear = model.head[-1]
    with torch.no_grad():
        linear.weight.copy_(weight)
        linear.bias.copy_(bias)
    return probe


def _evaluate(model: ExpressionNet, crops: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor, classes):
    probs = predict_proba(model, crops)
    loss = F.nll_loss(torch.log(torch.from_numpy(probs).clamp_min(1e-12)), labels, weight=weights).item()
    metrics = classification_metrics(labels.numpy(), probs.argmax(1), classes)
    return loss, metrics["accuracy"], metrics["macro_f1"]


def train_classifier(
    train_crops: torch.Tensor,
    train_labels: torch.Tensor,
    val_crops: torch.Tensor,
    val_labels: torch.Tensor,
    classes: list[str],
    config: TrainConfig,
    weights_path: str | Path,
    device: str = "cpu",
    progress: Callable[[EpochLog], None] | None = None,
) -> TrainResult:
    """Fine-tune ``config.backbone`` (from ``weights_path``) on the crops; labels index ``classes``."""
    if len(train_crops) == 0:
        raise ValueError("the train split is empty: nothing to learn from")
    torch_device = torch.device(device)
    use_amp = torch_device.type == "cuda"
    cuda_index = torch_device.index if torch_device.index is not None else 0
    with torch.random.fork_rng(devices=[cuda_index] if use_amp else []):
        torch.manual_seed(config.seed)
        model = ExpressionNet(config.backbone, len(classes), weights_path, config.dropout)
        model = model.to(torch_device, memory_format=MEMORY_FORMAT)
        result = TrainResult(model, list(classes), device=str(torch_device))
        weights = class_weights(train_labels, len(classes))
        best_f1, best_state, stale = -1.0, None, 0
        if config.head_init == "probe":
            result.probe = init_head_from_probe(
                model, train_crops, train_labels, val_crops, val_labels, classes, config.calibrate_head
            )
            if result.probe.val_macro_f1 is not None:  # epoch 0: the probe itself, kept if no epoch beats it
                best_f1 = _evaluate(model, val_crops, val_labels, weights, classes)[2]
                best_state = _copy_state(model)
        elif config.head_init != "random":
            raise ValueError(f"unknown head_init {config.head_init!r}; choose 'probe' or 'random'")
        optimizer = torch.optim.AdamW(
            [
                {"params": model.features.parameters(), "lr": config.backbone_lr},
                {"params": model.head.parameters(), "lr": config.head_lr},
            ],
            weight_decay=config.weight_decay,
        )
        steps_per_epoch = -(-len(train_crops) // config.batch_size)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, warmup_cosine(config.warmup_epochs * steps_per_epoch, config.epochs * steps_per_epoch)
        )
        augment = train_transform(model.input_size, config.augmentation)
        mix = batch_mixing(config.mix, config.mix_alpha, len(classes))
        for epoch in range(1, config.epochs + 1):
            started = time.perf_counter()
            model.train()
            if config.freeze_bn:
                for module in model.modules():
                    if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                        module.eval()
            order = torch.randperm(len(train_crops))
            total_loss, correct = 0.0, 0
            for start in range(0, len(order), config.batch_size):
                batch = order[start : start + config.batch_size]
                x = torch.stack([augment(train_crops[i]) for i in batch]).to(torch_device, memory_format=MEMORY_FORMAT)
                y = train_labels[batch].to(torch_device)
                x, target = (x, y) if mix is None else mix(x, y)  # mixed: soft targets (N, classes)
                with torch.autocast(torch_device.type, dtype=torch.bfloat16, enabled=use_amp):
                    logits = model(x)
                loss = F.cross_entropy(
                    logits.float(), target, weight=weights.to(torch_device), label_smoothing=config.label_smoothing
                )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                total_loss += loss.item() * len(batch)
                correct += int((logits.argmax(1) == (y if mix is None else target.argmax(1))).sum())
            seconds = time.perf_counter() - started
            val = _evaluate(model, val_crops, val_labels, weights, classes) if len(val_crops) else (None,) * 3
            log = EpochLog(
                epoch, total_loss / len(order), correct / len(order), *val, seconds, len(order) / seconds
            )
            result.history.append(log)
            if progress is not None:
                progress(log)
            if log.val_macro_f1 is None or epoch < config.first_selectable_epoch:
                continue
            if log.val_macro_f1 > best_f1 + 1e-6:
                best_f1, stale, result.best_epoch = log.val_macro_f1, 0, epoch
                best_state = _copy_state(model)
            else:
                stale += 1
                if stale >= config.patience:
                    result.stopped_early = True
                    break
        if best_state is not None:
            model.load_state_dict(best_state)
        else:
            result.best_epoch = len(result.history)
    model.eval()
    return result
