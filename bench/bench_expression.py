"""Fine-tuned expression model vs a logistic-regression probe on the same frozen backbone.

On the external photo set ``media/expressions`` (660 photos, 6 classes), split by file
with each of ``--seeds`` (stratified 60/20/20: 396 train, 132 val, 132 test; the seed
also seeds training), in one run:

1. baseline: :mod:`tiktokfer_assets.expression.probe` (the backbone frozen,
   logistic regression on its standardised features of the un-augmented crops,
   ``C`` picked on val);
2. the fine-tuned model (:func:`tiktokfer_assets.expression.train.train_classifier`
   with ``TrainConfig``'s defaults, or ``--set field=value``).

Both are scored once on the test part (never used to choose anything). Prints the
macro-F1 of each per seed, the mean difference against the goal (+0.10; one split's
132 test photos move macro-F1 by a few hundredths, so the goal is judged on the mean),
and the training images per second on the device used.

    PYTHONPATH=tests .venv/bin/python bench/bench_expression.py [--backbone mobilefacenet|retinaface]
        [--seeds 0 1 2] [--epochs N] [--device cpu|cuda] [--threads N] [--verbose]
        [--set augmentation=basic --set head_init=probe ...]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from tiktokfer_assets.assets.expression_model import backbone_weights
from tiktokfer_assets.expression.backbones import BACKBONES, ExpressionNet
from tiktokfer_assets.expression.data import decode, labelled_photos, split_by_file
from tiktokfer_assets.expression.metrics import classification_metrics
from tiktokfer_assets.expression.probe import fit_probe, frozen_features
from tiktokfer_assets.expression.settings import DEFAULT_BACKBONE, TrainConfig
from tiktokfer_assets.expression.train import predict_proba, train_classifier
from tiktokfer_assets.paths import media_dir

GOAL = 0.10


def config_overrides(pairs: list[str]) -> dict:
    """``["field=value", ...]`` -> ``TrainConfig`` fields, each value cast to the field's default's type."""
    defaults = TrainConfig().to_dict()
    out = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in defaults:
            raise SystemExit(f"error: unknown TrainConfig field {name!r}; fields: {sorted(defaults)}")
        kind = type(defaults[name])
        out[name] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    return out


def run_seed(args, seed: int) -> tuple[float, float, float]:
    """(probe test macro-F1, fine-tuned test macro-F1, training images/s) on the split drawn with ``seed``."""
    parts = split_by_file(labelled_photos(media_dir() / "expressions"), seed)
    classes = sorted(set(parts["train"].labels))
    crops = {split: decode(images.paths) for split, images in parts.items()}
    labels = {split: torch.tensor([classes.index(c) for c in images.labels]) for split, images in parts.items()}
    config = TrainConfig(backbone=args.backbone, epochs=args.epochs, seed=seed, **config_overrides(args.set))
    changed = {k: v for k, v in config.to_dict().items() if v != getattr(TrainConfig, k) and k != "seed"}
    print(f"seed {seed}: {args.backbone} on {args.device} ({torch.get_num_threads()} threads), "
          + ", ".join(f"{len(v)} {k}" for k, v in parts.items()) + f"; config {changed or 'defaults'}")

    weights = backbone_weights(args.backbone)
    frozen = ExpressionNet(args.backbone, len(classes), weights).to(args.device)
    started = time.perf_counter()
    features = {split: frozen_features(frozen.features, frozen.input_size, crops[split]) for split in crops}
    probe = fit_probe(features["train"], labels["train"].numpy(), features["val"], labels["val"].numpy(), classes)
    probe_test = classification_metrics(labels["test"], probe.pipeline.predict(features["test"]), classes)
    print(f"  probe: C={probe.c} (val macro-F1 {probe.val_macro_f1:.3f}), test macro-F1 {probe_test['macro_f1']:.3f}, "
          f"accuracy {probe_test['accuracy']:.3f} ({time.perf_counter() - started:.0f} s)")

    started = time.perf_counter()
    result = train_classifier(
        crops["train"], labels["train"], crops["val"], labels["val"], classes, config, weights, args.device,
        progress=lambda e: args.verbose and print(
            f"    epoch {e.epoch}: loss {e.train_loss:.3f}, val macro-F1 {e.val_macro_f1:.3f}, "
            f"{e.images_per_s:.1f} images/s", flush=True),
    )
    tuned = classification_metrics(labels["test"], predict_proba(result.model, crops["test"]).argmax(1), classes)
    kept_val = result.history[result.best_epoch - 1].val_macro_f1 if result.best_epoch else result.probe.val_macro_f1
    print(f"  fine-tuned: kept epoch {result.best_epoch} of {len(result.history)} (val macro-F1 "
          f"{kept_val:.3f}), test macro-F1 {tuned['macro_f1']:.3f}, "
          f"accuracy {tuned['accuracy']:.3f} ({time.perf_counter() - started:.0f} s)", flush=True)
    return probe_test["macro_f1"], tuned["macro_f1"], result.images_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default=DEFAULT_BACKBONE, choices=sorted(BACKBONES))
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one split and training seed each")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a TrainConfig field")
    parser.add_argument("--verbose", action="store_true", help="print every epoch")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    runs = [run_seed(args, seed) for seed in args.seeds]
    probe, tuned, speed = (np.array(column) for column in zip(*runs))
    delta = tuned - probe
    print(f"macro-F1 over seeds {args.seeds}: probe {probe.mean():.3f}, fine-tuned {tuned.mean():.3f}; "
          f"fine-tuned - probe = {delta.mean():+.3f} (per seed {', '.join(f'{d:+.3f}' for d in delta)}; "
          f"goal +{GOAL:.2f}: {'met' if delta.mean() >= GOAL else 'NOT met'}); "
          f"training {speed.mean():.1f} images/s on {args.device}")


if __name__ == "__main__":
    main()
