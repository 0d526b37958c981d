"""The model artifact (a folder) and prediction on face images and videos.

Files: ``model.pt`` (fine-tuned state dict, backbone name, classes), ``labels.json``
(index -> class), ``preprocessing.json`` (:func:`preprocess.describe`), ``metrics.json``
and ``config.json`` (the training configuration). :func:`load_model` needs only
``model.pt``; the backbone's original checkpoint is not read again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tiktokfer_assets.expression.backbones import ExpressionNet
from tiktokfer_assets.expression.data import CROP_SIZE, load_rgb
from tiktokfer_assets.expression.errors import ExpressionInputError
from tiktokfer_assets.expression.preprocess import describe
from tiktokfer_assets.expression.train import MEMORY_FORMAT, predict_proba
from tiktokfer_assets.media.frames import iter_frames
from tiktokfer_assets.vision.align import align_face
from tiktokfer_assets.vision.detector import FaceDetector

CHECKPOINT = "model.pt"
ARTIFACT_FILES = (CHECKPOINT, "labels.json", "preprocessing.json", "metrics.json", "config.json")


@dataclass
class ExpressionModel:
    net: ExpressionNet
    classes: list[str]

    def probabilities(self, crops: torch.Tensor) -> np.ndarray:
        """``(N, classes)`` probabilities of ``uint8`` ``(N, 3, 112, 112)`` RGB crops."""
        return predict_proba(self.net, crops)

    def predict(self, crops: torch.Tensor) -> list[tuple[str, float]]:
        """Most probable class and its probability, per crop."""
        probs = self.probabilities(crops)
        return [(self.classes[i], float(p[i])) for p, i in zip(probs, probs.argmax(1))]


def save_artifact(folder: str | Path, net: ExpressionNet, classes: list[str], config: dict, metrics: dict) -> Path:
    """Write the artifact's files into ``folder`` (created) and return it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    torch.save({"state_dict": state, "backbone": net.backbone_name, "classes": list(classes)}, folder / CHECKPOINT)
    documents = {
        "labels.json": dict(enumerate(classes)),
        "preprocessing.json": describe(net.input_size, config["augmentation"]),
        "metrics.json": metrics,
        "config.json": config,
    }
    for name, document in documents.items():
        (folder / name).write_text(json.dumps(document, indent=2))
    return folder


def load_model(folder: str | Path, device: str = "cpu") -> ExpressionModel:
    """The model of an artifact folder, in eval mode on ``device``."""
    path = Path(folder) / CHECKPOINT
    if not path.is_file():
        raise ExpressionInputError(f"{path} is missing: not an expression model folder")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    net = ExpressionNet(checkpoint["backbone"], len(checkpoint["classes"]), weights_path=None)
    net.load_state_dict(checkpoint["state_dict"], strict=True)
    return ExpressionModel(net.to(device, memory_format=MEMORY_FORMAT).eval(), list(checkpoint["classes"]))


def predict_image(model: ExpressionModel, image: str | Path) -> tuple[str, float]:
    """Expression and probability of a face image (a crop such as the export's, resized to 112x112)."""
    crop = torch.from_numpy(load_rgb(image)).permute(2, 0, 1)
    return model.predict(crop[None])[0]


def video_faces(
    video: str | Path, detector: FaceDetector, every_s: float = 0.5
) -> Iterator[tuple[float, int, np.ndarray]]:
    """``(timestamp_s, rank, crop)`` per face found in the frames every ``every_s``.

    The crop is RGB ``uint8`` 112x112, aligned on its landmarks as the export's crops are."""
    for timestamp, frame in iter_frames(video, every_s):
        for rank, detection in enumerate(detector.detect_one(frame)):
            yield timestamp, rank, align_face(frame, detection.landmarks, CROP_SIZE)[..., ::-1].copy()


def predict_video(
    model: ExpressionModel, video: str | Path, detector: FaceDetector, every_s: float = 0.5
) -> list[dict]:
    """One row per face found in the video: ``timestamp_s``, ``face`` (rank in its frame), expression, probability."""
    found = list(video_faces(video, detector, every_s))
    if not found:
        return []
    crops = torch.from_numpy(np.stack([crop for _, _, crop in found])).permute(0, 3, 1, 2)
    return [
        {"timestamp_s": t, "face": rank, "expression": label, "probability": p}
        for (t, rank, _), (label, p) in zip(found, model.predict(crops))
    ]
