"""Fine-tuned expression model vs a logistic-regression probe on the same frozen backbone.

On the external photo set ``media/expressions`` (660 photos, 6 classes), split by file
with ``--seed`` (stratified 60/20/20: 396 train, 132 val, 132 test), in one run:

1. baseline: the backbone frozen, its features of the un-augmented train crops
   standardised and fed to scikit-learn's ``LogisticRegression`` (balanced class
   weights; ``C`` picked on val from a small grid);
2. the fine-tuned model (:func:`tiktokfer_assets.expression.train.train_classifier`,
   whole network, augmentation, weighted loss, early stopping on val).

Both are scored once on the test part (never used to choose anything). Prints the
macro-F1 of each, the difference against the goal (+0.10), and the training images
per second on the device used.

    .venv/bin/python bench/bench_expression.py [--backbone mobilefacenet|retinaface] [--epochs 30] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tiktokfer_assets.assets.expression_model import backbone_weights
from tiktokfer_assets.expression.backbones import BACKBONES, ExpressionNet
from tiktokfer_assets.expression.data import decode, labelled_photos, split_by_file
from tiktokfer_assets.expression.metrics import classification_metrics
from tiktokfer_assets.expression.preprocess import eval_transform
from tiktokfer_assets.expression.settings import DEFAULT_BACKBONE, TrainConfig
from tiktokfer_assets.expression.train import PREDICT_BATCH, predict_proba, train_classifier
from tiktokfer_assets.paths import media_dir

GOAL = 0.10
PROBE_C_GRID = (0.01, 0.1, 1.0, 10.0)


@torch.inference_mode()
def frozen_features(model: ExpressionNet, crops: torch.Tensor) -> np.ndarray:
    model.eval()
    transform = eval_transform(model.input_size)
    device = next(model.parameters()).device
    parts = [model.features(transform(crops[s : s + PREDICT_BATCH]).to(device)).cpu().numpy()
             for s in range(0, len(crops), PREDICT_BATCH)]
    return np.concatenate(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default=DEFAULT_BACKBONE, choices=sorted(BACKBONES))
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    parts = split_by_file(labelled_photos(media_dir() / "expressions"), args.seed)
    classes = sorted(set(parts["train"].labels))
    crops = {split: decode(images.paths) for split, images in parts.items()}
    labels = {split: torch.tensor([classes.index(c) for c in images.labels]) for split, images in parts.items()}
    print(f"{args.backbone} on {args.device}: " + ", ".join(f"{len(v)} {k}" for k, v in parts.items()))

    weights = backbone_weights(args.backbone)
    frozen = ExpressionNet(args.backbone, len(classes), weights).to(args.device)
    started = time.perf_counter()
    features = {split: frozen_features(frozen, crops[split]) for split in crops}
    probes = {
        c: make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000, class_weight="balanced"))
        .fit(features["train"], labels["train"].numpy())
        for c in PROBE_C_GRID
    }
    val_f1 = {c: classification_metrics(labels["val"], p.predict(features["val"]), classes)["macro_f1"]
              for c, p in probes.items()}
    best_c = max(val_f1, key=val_f1.get)
    probe = classification_metrics(labels["test"], probes[best_c].predict(features["test"]), classes)
    print(f"probe: C={best_c} (val macro-F1 {val_f1[best_c]:.3f}), test macro-F1 {probe['macro_f1']:.3f}, "
          f"accuracy {probe['accuracy']:.3f} ({time.perf_counter() - started:.0f} s)")

    config = TrainConfig(backbone=args.backbone, epochs=args.epochs, seed=args.seed)
    result = train_classifier(
        crops["train"], labels["train"], crops["val"], labels["val"], classes, config, weights, args.device,
        progress=lambda e: print(f"  epoch {e.epoch}: loss {e.train_loss:.3f}, val macro-F1 {e.val_macro_f1:.3f}, "
                                 f"{e.images_per_s:.1f} images/s", flush=True),
    )
    tuned = classification_metrics(labels["test"], predict_proba(result.model, crops["test"]).argmax(1), classes)
    delta = tuned["macro_f1"] - probe["macro_f1"]
    print(f"fine-tuned: best epoch {result.best_epoch} of {len(result.history)}, test macro-F1 "
          f"{tuned['macro_f1']:.3f}, accuracy {tuned['accuracy']:.3f}")
    print(f"macro-F1 fine-tuned - probe = {delta:+.3f} (goal +{GOAL:.2f}: {'met' if delta >= GOAL else 'NOT met'}); "
          f"training {result.images_per_s:.1f} images/s on {args.device}")


if __name__ == "__main__":
    main()
