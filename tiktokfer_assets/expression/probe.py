"""A logistic-regression probe on a backbone's frozen features: the baseline, and the head that fine-tuning starts from.

The backbone (eval mode, its checkpoint's batch-norm statistics) embeds the
un-augmented crops; scikit-learn's ``LogisticRegression`` (balanced class weights)
is fitted on the standardised train features for each ``C`` of ``C_GRID`` and the one
with the best val macro-F1 is kept (without val faces: ``C = 1``). :func:`head_weights`
folds the standardisation into one linear layer, so ``ExpressionNet.head`` computes
exactly the probe's logits and fine-tuning (LP-FT) starts where the probe ends.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from tiktokfer_assets.expression.metrics import classification_metrics
from tiktokfer_assets.expression.preprocess import eval_transform

C_GRID = (0.01, 0.1, 1.0, 10.0)
DEFAULT_C = 1.0
FEATURE_BATCH = 128
ABSENT_BIAS = -30.0
"""Logit of a class the probe never saw (probability about e-30 of the others')."""


SCALE_GRID = tuple(2.0**k for k in range(7))
"""Factors tried on the probe's logits (1 to 64) when it becomes a head (:func:`logit_scale`)."""


@dataclass(frozen=True)
class Probe:
    pipeline: Pipeline
    c: float
    val_macro_f1: float | None


@torch.inference_mode()
def frozen_features(features: torch.nn.Module, input_size: tuple[int, int], crops: torch.Tensor) -> np.ndarray:
    """``(N, dim)`` float32 features of ``uint8`` crops, the module in eval mode (restored after)."""
    was_training = features.training
    features.eval()
    device = next(features.parameters()).device
    transform = eval_transform(input_size)
    parts = [features(transform(crops[s : s + FEATURE_BATCH]).to(device)).float().cpu().numpy()
             for s in range(0, len(crops), FEATURE_BATCH)]
    features.train(was_training)
    return np.concatenate(parts) if parts else np.empty((0, 0), dtype=np.float32)


def fit_probe(
    train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray, classes: list[str]
) -> Probe:
    """The probe with the best val macro-F1 over ``C_GRID`` (``DEFAULT_C`` alone without val)."""

    def fit(c: float) -> Pipeline:
        model = LogisticRegression(C=c, max_iter=5000, class_weight="balanced")
        return make_pipeline(StandardScaler(), model).fit(train_x, train_y)

    if len(val_x) == 0:
        return Probe(fit(DEFAULT_C), DEFAULT_C, None)
    fitted = {c: fit(c) for c in C_GRID}
    scores = {c: classification_metrics(val_y, p.predict(val_x), classes)["macro_f1"] for c, p in fitted.items()}
    best = max(scores, key=scores.get)
    return Probe(fitted[best], best, scores[best])


def logit_scale(probe: Probe, x: np.ndarray, y: np.ndarray) -> float:
    """The factor of ``SCALE_GRID`` that gives the probe's logits the lowest log-loss on ``(x, y)``.

    A strongly regularised probe (small ``C``) is right but unsure: its logits are near 0 and
    its loss near ``ln(classes)``, so fine-tuning from it starts with large gradients that
    distort the backbone; scaled (temperature calibration), it starts confident where it is right."""
    logits = torch.as_tensor(probe.pipeline.decision_function(x), dtype=torch.float32)
    if logits.ndim == 1:  # binary: the logit of classes_[1], as in head_weights
        logits = torch.stack([-logits / 2, logits / 2], dim=1)
    target = torch.as_tensor(np.searchsorted(probe.pipeline[-1].classes_, y))
    losses = {s: torch.nn.functional.cross_entropy(logits * s, target).item() for s in SCALE_GRID}
    return min(losses, key=losses.get)


def head_weights(probe: Probe, num_classes: int, scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weight (classes, dim), bias (classes,))`` of the linear layer equal to the probe's decision function.

    Classes absent from the probe's train labels get a zero weight and ``ABSENT_BIAS``."""
    scaler, model = probe.pipeline[0], probe.pipeline[-1]
    coef = scale * model.coef_ / scaler.scale_
    intercept = scale * model.intercept_ - coef @ scaler.mean_
    if coef.shape[0] == 1:  # binary: sklearn keeps one row, the logit of classes_[1]
        coef, intercept = np.stack([-coef[0] / 2, coef[0] / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
    weight = torch.zeros((num_classes, coef.shape[1]))
    bias = torch.full((num_classes,), ABSENT_BIAS)
    rows = torch.as_tensor(model.classes_, dtype=torch.long)
    weight[rows] = torch.as_tensor(coef, dtype=torch.float32)
    bias[rows] = torch.as_tensor(intercept, dtype=torch.float32)
    return weight, bias
