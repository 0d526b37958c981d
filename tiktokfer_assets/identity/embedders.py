"""Face embedding backends behind one interface, :class:`FaceEmbedder`.

An embedder turns face images into L2-normalised float32 vectors so that the
cosine similarity of two faces is their dot product; tracks are then compared by
their mean embedding (see :mod:`tiktokfer_assets.identity`).

Input convention (both backends): each image is an ``(H, W, 3)`` ``uint8`` numpy
array in **BGR** order, the order the detector's frames and crops use (OpenCV /
RetinaFace convention). The backends convert to the RGB their networks were trained
on. ``landmarks`` are the detector's five points per image (left eye, right eye,
nose, left mouth corner, right mouth corner), in the pixel coordinates of the image
passed (subtract the crop origin when passing crops of a frame).

Backends:

* :class:`MobileFaceNetEmbedder` (``"mobilefacenet"``): a face-recognition network
  from a local checkpoint. Faces are aligned on their landmarks to the SphereFace
  template (required: without alignment the embeddings do not separate people),
  embedded together with their horizontal mirror, and the two 128-d outputs are
  concatenated (256-d), the usual test-time augmentation of this model.
* :class:`OpenClipEmbedder` (``"open_clip"``): the image tower of an open_clip model
  on the whole crop (landmarks unused). Weights come from a local checkpoint file
  or open_clip's cache; nothing is downloaded.

Both run batched on a torch device (``"cpu"`` or ``"cuda"``, as resolved by the GPU
resource) and are built once per run (:func:`build_embedder`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from tiktokfer_assets.models import MOBILEFACENET_WEIGHTS
from tiktokfer_assets.vision.align import align_face
from tiktokfer_assets.vision.mobilefacenet import EMBEDDING_DIM, INPUT_SIZE, load_mobilefacenet
from tiktokfer_assets.weights import require_file

Landmarks5 = np.ndarray | Sequence[Sequence[float]]
"""Five ``(x, y)`` points: left eye, right eye, nose, left mouth corner, right mouth corner."""


@runtime_checkable
class FaceEmbedder(Protocol):
    """Embeds BGR face images into L2-normalised vectors of length ``dim``."""

    name: str
    dim: int

    def embed(self, images: Sequence[np.ndarray], landmarks: Sequence[Landmarks5] | None = None) -> np.ndarray:
        """``(len(images), dim)`` float32 array; each row has unit L2 norm."""
        ...


def _check_bgr(image: np.ndarray, index: int) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        got = f"shape {image.shape} dtype {image.dtype}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"image {index}: expected an (H, W, 3) uint8 BGR array, got {got}")
    return image


def _batches(count: int, batch_size: int) -> range:
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    return range(0, count, batch_size)


class MobileFaceNetEmbedder:
    """MobileFaceNet embeddings (256-d: the face and its mirror image, 128-d each).

    Args:
        weights_path: checkpoint with the state dict under ``net_state_dict``
            (default: the manifest's, verified by sha256).
        device: torch device the network runs on.
        batch_size: faces per forward pass (each pass also runs their mirrors).
    """

    name = "mobilefacenet"
    dim = 2 * EMBEDDING_DIM

    def __init__(
        self,
        weights_path: str | Path | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 64,
    ) -> None:
        self.weights_path = Path(weights_path) if weights_path is not None else require_file(MOBILEFACENET_WEIGHTS)
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.model = load_mobilefacenet(self.weights_path, self.device)

    def preprocess(self, images: Sequence[np.ndarray], landmarks: Sequence[Landmarks5] | None) -> np.ndarray:
        """Aligned ``(N, 112, 96, 3)`` uint8 BGR crops.

        With ``landmarks`` each image is warped onto the template. Without them the
        images are taken as already aligned and only resized to 112x96 when they
        differ (a detector box crop passed this way embeds poorly: the model needs
        alignment).
        """
        if landmarks is not None and len(landmarks) != len(images):
            raise ValueError(f"got {len(images)} images but {len(landmarks)} landmark sets")
        height, width = INPUT_SIZE
        crops = np.empty((len(images), height, width, 3), dtype=np.uint8)
        for i, image in enumerate(images):
            image = _check_bgr(image, i)
            if landmarks is not None:
                crops[i] = align_face(image, landmarks[i], INPUT_SIZE)
            elif image.shape[:2] == INPUT_SIZE:
                crops[i] = image
            else:
                crops[i] = np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))
        return crops

    @torch.inference_mode()
    def embed(self, images: Sequence[np.ndarray], landmarks: Sequence[Landmarks5] | None = None) -> np.ndarray:
        """Align, embed the crops and their mirrors, concatenate and L2-normalise."""
        out = np.empty((len(images), self.dim), dtype=np.float32)
        for start in _batches(len(images), self.batch_size):
            stop = start + self.batch_size
            crops = self.preprocess(images[start:stop], None if landmarks is None else landmarks[start:stop])
            # BGR -> RGB, NHWC -> NCHW, scaled as in training: (x - 127.5) / 128.
            x = torch.from_numpy(crops[..., ::-1].copy()).to(self.device).permute(0, 3, 1, 2).float()
            x = (x - 127.5) / 128.0
            features = self.model(torch.cat([x, x.flip(3)]))  # flip(3): mirror along the width
            n = len(crops)
            features = torch.cat([features[:n], features[n:]], dim=1)
            out[start:stop] = F.normalize(features, dim=1).cpu().numpy()
        return out


class OpenClipWeightsMissing(FileNotFoundError):
    """The requested open_clip weights are neither a local file nor in the cache."""


def _resolve_open_clip_weights(model_name: str, pretrained: str, cache_dir: str | None) -> tuple[str, dict]:
    """Local checkpoint for ``pretrained`` (a file path or a tag of ``model_name``).

    Returns the file and the tag's preprocessing config (empty for a file path).
    A tag is looked up only in the caches open_clip downloads into (the Hugging Face
    hub cache, or ``~/.cache/clip`` for URL-hosted weights), so this never touches
    the network; a missing file raises :class:`OpenClipWeightsMissing` saying how to
    provide it.
    """
    import open_clip
    from huggingface_hub import try_to_load_from_cache
    from open_clip.pretrained import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME, get_pretrained_cfg

    if os.path.isfile(pretrained):
        return pretrained, {}
    tags = open_clip.list_pretrained_tags_by_model(model_name)
    config = get_pretrained_cfg(model_name, pretrained)
    if not config:
        raise OpenClipWeightsMissing(
            f"open_clip pretrained={pretrained!r} is neither a file nor a known tag of model {model_name!r} "
            f"(known tags: {', '.join(tags) or 'none'}). Pass a known tag whose weights are in the open_clip "
            "cache, or the path of a local checkpoint file."
        )
    looked_in: list[str] = []
    if config.get("hf_hub"):
        repo_id, filename = os.path.split(config["hf_hub"])
        candidates = [filename] if filename else [HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME]
        if filename.endswith((".bin", ".pth")):
            candidates.insert(0, filename[:-4] + ".safetensors")
        for candidate in candidates:
            cached = try_to_load_from_cache(repo_id, candidate, cache_dir=cache_dir)
            if isinstance(cached, str):
                return cached, config
        looked_in.append(f"Hugging Face cache: {repo_id} / {' or '.join(candidates)}")
    if config.get("url"):
        cached = Path(cache_dir or os.path.expanduser("~/.cache/clip")) / os.path.basename(config["url"])
        if cached.is_file():
            return str(cached), config
        looked_in.append(str(cached))
    raise OpenClipWeightsMissing(
        f"open_clip weights for model {model_name!r} pretrained={pretrained!r} are not available offline "
        f"(looked in: {'; '.join(looked_in)}). This machine cannot download them: on a machine with internet "
        f"run `python -c \"import open_clip; open_clip.create_model_and_transforms({model_name!r}, "
        f"pretrained={pretrained!r})\"` and copy its Hugging Face cache (~/.cache/huggingface/hub) here "
        "(or set cache_dir), or pass pretrained=<path to the checkpoint file>."
    )


class OpenClipEmbedder:
    """Image embeddings of an open_clip model (e.g. 512-d for ViT-B-32).

    Args:
        model_name: open_clip architecture (``open_clip.list_models()``), or a
            ``local-dir:/path`` folder holding ``open_clip_config.json`` and weights.
        pretrained: a tag of ``model_name`` whose weights are in the cache, a
            checkpoint file, or ``None`` for random initialisation (tests; seed
            ``torch`` first for reproducible weights).
        device: torch device the model runs on.
        batch_size: images per forward pass.
        cache_dir: where to look for tagged weights (open_clip's ``cache_dir``;
            default: the Hugging Face hub cache and ``~/.cache/clip``).
    """

    def __init__(
        self,
        model_name: str = "ViT-B-32",
        pretrained: str | Path | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 64,
        cache_dir: str | Path | None = None,
    ) -> None:
        import open_clip

        self.device = torch.device(device)
        self.batch_size = batch_size
        cache = None if cache_dir is None else str(cache_dir)
        options: dict = {}
        checkpoint = None
        checkpoint_in_model_dir = model_name.startswith(("local-dir:", "hf-hub:"))
        if pretrained is not None and not checkpoint_in_model_dir:
            checkpoint, tag_config = _resolve_open_clip_weights(model_name, str(pretrained), cache)
            # A tag also fixes the activation and preprocessing the weights were trained with.
            options = {
                "force_quick_gelu": tag_config.get("quick_gelu", False),
                "image_mean": tag_config.get("mean"),
                "image_std": tag_config.get("std"),
                "image_interpolation": tag_config.get("interpolation"),
                "image_resize_mode": tag_config.get("resize_mode"),
            }
        model, _, self.transform = open_clip.create_model_and_transforms(
            model_name, pretrained=checkpoint, device=self.device, cache_dir=cache, **options
        )
        self.model = model.eval()
        self.dim = int(self.model.visual.output_dim)
        if pretrained is not None:
            self.name = f"open_clip:{model_name}:{Path(str(pretrained)).name}"
        else:
            self.name = f"open_clip:{model_name}" + ("" if checkpoint_in_model_dir else ":random")

    @torch.inference_mode()
    def embed(self, images: Sequence[np.ndarray], landmarks: Sequence[Landmarks5] | None = None) -> np.ndarray:
        """Embed whole crops (``landmarks`` is accepted for the interface and unused)."""
        out = np.empty((len(images), self.dim), dtype=np.float32)
        for start in _batches(len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            tensors = [
                self.transform(Image.fromarray(_check_bgr(image, start + i)[..., ::-1].copy()))
                for i, image in enumerate(chunk)
            ]
            features = self.model.encode_image(torch.stack(tensors).to(self.device))
            out[start : start + len(chunk)] = F.normalize(features.float(), dim=1).cpu().numpy()
        return out


BACKENDS = {"mobilefacenet": MobileFaceNetEmbedder, "open_clip": OpenClipEmbedder}


def build_embedder(backend: str, **options) -> FaceEmbedder:
    """Build the embedder named ``backend`` (``"mobilefacenet"`` or ``"open_clip"``).

    ``options`` go to the backend's constructor (``device``, ``batch_size``,
    ``weights_path`` / ``model_name``, ``pretrained``, ``cache_dir``).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown embedding backend {backend!r}; choose one of {sorted(BACKENDS)}")
    return BACKENDS[backend](**options)
