"""The confusion matrix and the learning curves as PNG bytes (matplotlib, no display)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def confusion_png(matrix: Sequence[Sequence[int]], classes: Sequence[str], title: str) -> bytes:
    """Counts per (true, predicted) class, rows normalised for the colour."""
    size = max(3.5, 0.6 * len(classes) + 1.5)
    figure, ax = plt.subplots(figsize=(size, size))
    totals = [max(1, sum(row)) for row in matrix]
    ax.imshow([[v / t for v in row] for row, t in zip(matrix, totals)], cmap="Blues", vmin=0, vmax=1)
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            ax.text(j, i, str(value), ha="center", va="center", color="white" if value / totals[i] > 0.5 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return _png(figure)


def learning_curves_png(history: Sequence[dict]) -> bytes:
    """Train and val loss (left), train accuracy and val accuracy / macro-F1 (right), per epoch."""
    epochs = [e["epoch"] for e in history]
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot(epochs, [e["train_loss"] for e in history], label="train loss")
    right.plot(epochs, [e["train_accuracy"] for e in history], label="train accuracy")
    if history and history[0]["val_loss"] is not None:
        left.plot(epochs, [e["val_loss"] for e in history], label="val loss")
        right.plot(epochs, [e["val_accuracy"] for e in history], label="val accuracy")
        right.plot(epochs, [e["val_macro_f1"] for e in history], label="val macro-F1")
    for ax in (left, right):
        ax.set_xlabel("epoch")
        ax.legend()
        ax.grid(alpha=0.3)
    return _png(figure)
