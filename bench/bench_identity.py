"""Calibration of the identity join threshold: same/different-person similarities and clustering at it.

The calibration set is built from what a media folder holds (``--media``, default ``media_dir()``;
the expression photos are in the shared data folder, ``--media ../shared/media``):

* ``faces/<person>/*``: the project's people (one face per photo);
* ``expressions/<expression>/<First_Last>_<NNNN>.jpg``: labelled photos of many people,
  the person named by the file name (look-alikes among them: politicians and tennis
  players of similar age, several actors from one film industry); people with at least
  two photos are kept, at most ``--per-person`` photos each (sorted by name);
* one generated variation of every photo, cycling through ``VARIATIONS`` (mirror, a crop
  of 12 % off one side, brightness x0.6 / x1.4, Gaussian blur, JPEG quality 15, rotation
  by +-10 degrees): what a video's frames do to one face.

Every image goes through the pipeline's own path: RetinaFace (best face), landmark
alignment, MobileFaceNet (``build_embedder("mobilefacenet")``). Faces under ``--min-side``
pixels (80) are left out: the small crops of one film-industry set in the expression
photos embed as noise (different people up to 0.92, one photo against its own variation
down to 0.03 with them). The bench prints the
distributions of cosine similarity for pairs of the same person (other photos; and a
photo against its own variation) and of different people, then clusters all images
with the asset's method (average linkage over all pairs) at thresholds 0.20-0.70 and
prints pairwise precision / recall / F1 at each, the best, and at the chosen constant
``SAME_PERSON_SIMILARITY["mobilefacenet"]``: its margin to the largest different-person
similarity and to the smallest same-person one.

Run: ``.venv/bin/python bench/bench_identity.py --media ../shared/media [--per-person 4] [--device cpu]``
"""

from __future__ import annotations

import argparse
import io
import re
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from tiktokfer_assets.identity.clustering import cluster_tracks
from tiktokfer_assets.identity.embedders import build_embedder
from tiktokfer_assets.identity.thresholds import SAME_PERSON_SIMILARITY
from tiktokfer_assets.models import RETINAFACE_WEIGHTS
from tiktokfer_assets.paths import media_dir
from tiktokfer_assets.vision.detector import FaceDetector
from tiktokfer_assets.weights import destination_of

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png"}
THRESHOLDS = np.round(np.arange(0.20, 0.705, 0.01), 2)


def _flip(im: Image.Image) -> Image.Image:
    return im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


def _crop(im: Image.Image) -> Image.Image:
    w, h = im.size
    return im.crop((int(0.12 * w), 0, w, h))


def _jpeg(im: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    im.save(buffer, format="JPEG", quality=15)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


VARIATIONS = {
    "mirror": _flip,
    "crop": _crop,
    "darker": lambda im: ImageEnhance.Brightness(im).enhance(0.6),
    "brighter": lambda im: ImageEnhance.Brightness(im).enhance(1.4),
    "blur": lambda im: im.filter(ImageFilter.GaussianBlur(radius=2)),
    "jpeg": _jpeg,
    "rotate": lambda im: im.rotate(10, resample=Image.Resampling.BILINEAR),
    "rotate_back": lambda im: im.rotate(-10, resample=Image.Resampling.BILINEAR),
}


def calibration_photos(root: Path, per_person: int) -> dict[str, list[Path]]:
    """Person -> photo paths: the faces folder's people and the named people of the expressions folder."""
    people: dict[str, list[Path]] = defaultdict(list)
    for path in sorted((root / "faces").glob("*/*")):
        if path.suffix.lower() in PHOTO_SUFFIXES:
            people[path.parent.name].append(path)
    for path in sorted((root / "expressions").glob("*/*"), key=lambda p: p.name):
        match = re.fullmatch(r"(.+?)_?(\d+)", path.stem)
        if match and path.suffix.lower() in PHOTO_SUFFIXES:
            people[match.group(1).lower()].append(path)
    return {person: paths[:per_person] for person, paths in sorted(people.items()) if len(paths) >= 2}


def _bgr(im: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(im.convert("RGB"))[:, :, ::-1])


def pairwise_prf(labels: np.ndarray, clusters: np.ndarray) -> tuple[float, float, float]:
    """Pairwise precision, recall and F1 of ``clusters`` against the true ``labels``."""
    a, b = np.triu_indices(len(labels), 1)
    same, joined = labels[a] == labels[b], clusters[a] == clusters[b]
    tp = int(np.sum(same & joined))
    precision = tp / max(int(joined.sum()), 1)
    recall = tp / max(int(same.sum()), 1)
    return precision, recall, 2 * precision * recall / max(precision + recall, 1e-12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", type=Path, default=media_dir())
    parser.add_argument("--per-person", type=int, default=4)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--min-side", type=float, default=80.0, help="faces smaller than this (px) are left out")
    args = parser.parse_args()
    t0 = time.perf_counter()
    people = calibration_photos(args.media, args.per_person)
    images, labels, source, kinds = [], [], [], []
    kind_names = list(VARIATIONS)
    for person, paths in people.items():
        for path in paths:
            photo = Image.open(path).convert("RGB")
            kind = kind_names[len(source) // 2 % len(kind_names)]
            for im, k in ((photo, "photo"), (VARIATIONS[kind](photo), kind)):
                images.append(_bgr(im))
                labels.append(person)
                source.append(str(path))
                kinds.append(k)
    detector = FaceDetector(destination_of(RETINAFACE_WEIGHTS), device=args.device, batch_size=8)
    found = detector.detect(images)
    def side(face) -> float:
        x1, y1, x2, y2 = face.box
        return min(x2 - x1, y2 - y1)

    keep = [i for i, faces in enumerate(found) if faces and side(faces[0]) >= args.min_side]
    embedder = build_embedder("mobilefacenet", device=args.device)
    vectors = embedder.embed([images[i] for i in keep], [np.asarray(found[i][0].landmarks) for i in keep])
    labels_arr = np.array([labels[i] for i in keep])
    source_arr = np.array([source[i] for i in keep])
    n_people = len(set(labels_arr))
    print(f"calibration set: {n_people} people, {len(set(source_arr))} photos + 1 variation each, "
          f"{len(keep)} of {len(images)} images with a face of {args.min_side:.0f} px or more "
          f"({time.perf_counter() - t0:.0f} s)")

    sims = vectors @ vectors.T
    a, b = np.triu_indices(len(keep), 1)
    same_person, same_photo = labels_arr[a] == labels_arr[b], source_arr[a] == source_arr[b]
    groups = {
        "same person, other photo": sims[a, b][same_person & ~same_photo],
        "same photo, varied": sims[a, b][same_photo],
        "different people": sims[a, b][~same_person],
    }
    for name, values in groups.items():
        q = np.percentile(values, [0, 1, 5, 50, 95, 99, 100])
        print(f"  {name:26s} n={len(values):6d}  min {q[0]:.3f}  p1 {q[1]:.3f}  p5 {q[2]:.3f}  median {q[3]:.3f}"
              f"  p95 {q[4]:.3f}  p99 {q[5]:.3f}  max {q[6]:.3f}")
    different = groups["different people"]
    worst = np.argsort(sims[a, b] * ~same_person)[-3:][::-1]
    print("  most similar different people:", ", ".join(
        f"{labels_arr[a[k]]} / {labels_arr[b[k]]} {sims[a[k], b[k]]:.2f}" for k in worst))

    names = [str(k) for k in range(len(keep))]
    pairs = (a, b, sims[a, b])
    truth = np.unique(labels_arr, return_inverse=True)[1]
    print("\nclustering (average linkage over all pairs), pairwise precision / recall / F1:")
    scores = {}
    for threshold in THRESHOLDS:
        clusters = cluster_tracks(names, vectors, pairs, method="average", threshold=float(threshold))
        scores[float(threshold)] = (*pairwise_prf(truth, np.array([clusters[n] for n in names])),
                                    len(set(clusters.values())))
    for threshold, (p, r, f1, count) in scores.items():
        if round(threshold * 100) % 5 == 0:
            print(f"  {threshold:.2f}: P {p:.3f}  R {r:.3f}  F1 {f1:.3f}  {count} clusters for {n_people} people")
    best = max(scores, key=lambda t: scores[t][2])
    print(f"  best F1 at {best:.2f}: F1 {scores[best][2]:.3f}")
    chosen = SAME_PERSON_SIMILARITY["mobilefacenet"]
    p, r, f1, count = scores[round(chosen, 2)]
    other = groups["same person, other photo"]
    print(f"\nchosen threshold {chosen}: P {p:.3f}  R {r:.3f}  F1 {f1:.3f}  {count} clusters for {n_people} people")
    print(f"  margin to the largest different-person similarity: {chosen - different.max():+.3f} "
          f"(to its 99.9th percentile {chosen - np.percentile(different, 99.9):+.3f})")
    print(f"  same-person pairs (other photos) below it: {np.mean(other < chosen):.1%}; "
          f"margin to their 5th percentile {np.percentile(other, 5) - chosen:+.3f}")


if __name__ == "__main__":
    main()
