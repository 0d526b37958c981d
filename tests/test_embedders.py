"""Face alignment, MobileFaceNet and open_clip embedders.

Geometry is tested on synthetic images with known landmark positions; identity
separation on the real photos under ``media_dir()/faces/<person>/`` with landmarks
from the project's RetinaFace detector.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from PIL import Image

from tiktokfer_assets.identity.embedders import (
    FaceEmbedder,
    MobileFaceNetEmbedder,
    OpenClipEmbedder,
    OpenClipWeightsMissing,
    build_embedder,
)
from tiktokfer_assets.models import MOBILEFACENET_WEIGHTS, RETINAFACE_WEIGHTS
from tiktokfer_assets.paths import media_dir
from tiktokfer_assets.vision.align import TEMPLATE_96X112, align_face, similarity_transform
from tiktokfer_assets.vision.detector import FaceDetector
from tiktokfer_assets.vision.mobilefacenet import load_mobilefacenet
from tiktokfer_assets.weights import destination_of

pytestmark = pytest.mark.media

MOBILEFACENET = destination_of(MOBILEFACENET_WEIGHTS)
# Landmark order of RetinaFace after mirroring an image: the left eye becomes the right one.
MIRRORED_ORDER = [1, 0, 2, 4, 3]


def _rotation(degrees: float) -> np.ndarray:
    a = np.deg2rad(degrees)
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def _blob_image(points: np.ndarray, sigma: float, shape: tuple[int, int]) -> np.ndarray:
    """A BGR image with a Gaussian blob centred on each point (pixel-index coordinates)."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    image = sum(np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2)) for x, y in points)
    gray = np.round(image / image.max() * 255).astype(np.uint8)
    return np.stack([gray] * 3, axis=-1)


def _centroid(image: np.ndarray, x: float, y: float, radius: float = 5.0) -> tuple[float, float]:
    yy, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    weights = image.astype(float) * (((xx - x) ** 2 + (yy - y) ** 2) < radius**2)
    return (weights * xx).sum() / weights.sum(), (weights * yy).sum() / weights.sum()


# --- alignment geometry ---------------------------------------------------------------


def test_similarity_transform_recovers_a_known_similarity():
    matrix = np.hstack([2.3 * _rotation(-31.0), [[57.0], [-12.5]]])
    src = np.random.default_rng(0).uniform(0, 300, size=(5, 2))
    dst = src @ matrix[:, :2].T + matrix[:, 2]
    np.testing.assert_allclose(similarity_transform(src, dst), matrix, atol=1e-9)


def test_similarity_transform_never_reflects():
    mirrored = TEMPLATE_96X112 * [-1.0, 1.0]  # a reflection cannot be a similarity
    matrix = similarity_transform(mirrored, TEMPLATE_96X112)
    assert np.linalg.det(matrix[:, :2]) > 0


@pytest.mark.parametrize("scale", [0.8, 1.7, 4.6])  # enlarging, mild and strong shrinking
def test_align_face_puts_the_landmarks_on_the_template(scale):
    """Blobs drawn at the landmarks end up centred on the template points.

    The bound (0.1 px) is tighter than a half-pixel convention error would allow.
    """
    landmarks = TEMPLATE_96X112 @ (scale * _rotation(23.0)).T + [150.3, 80.6]
    image = _blob_image(landmarks, sigma=1.5 * scale, shape=(int(150 + 130 * scale), int(120 + 150 * scale)))
    aligned = align_face(image, landmarks)
    assert aligned.shape == (112, 96, 3) and aligned.dtype == np.uint8
    for x, y in TEMPLATE_96X112:
        cx, cy = _centroid(aligned[..., 0], x, y)
        assert np.hypot(cx - x, cy - y) < 0.1, (scale, (x, y), (cx, cy))


def test_align_face_keeps_channel_order_and_fills_outside_with_black():
    image = np.empty((200, 200, 3), dtype=np.uint8)
    image[:] = (10, 120, 240)
    # Landmarks near the image's top edge: the template's top rows fall outside.
    landmarks = TEMPLATE_96X112 * 1.0 + [50.0, -40.0]
    aligned = align_face(image, landmarks)
    assert tuple(aligned[100, 48]) == (10, 120, 240)
    assert tuple(aligned[0, 48]) == (0, 0, 0)


def test_align_face_rejects_wrong_inputs():
    with pytest.raises(ValueError, match="5 \\(x, y\\) landmarks"):
        align_face(np.zeros((50, 50, 3), np.uint8), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="uint8 image"):
        align_face(np.zeros((50, 50), np.uint8), TEMPLATE_96X112)


# --- MobileFaceNet --------------------------------------------------------------------


def test_mobilefacenet_checkpoint_loads_strictly(tmp_path):
    model = load_mobilefacenet(MOBILEFACENET)
    with torch.inference_mode():
        assert model(torch.zeros(2, 3, 112, 96)).shape == (2, 128)
    state = torch.load(MOBILEFACENET, map_location="cpu", weights_only=True)["net_state_dict"]
    assert set(model.state_dict()) == set(state)
    del state["linear7.bn.running_var"]
    broken = tmp_path / "broken.ckpt"
    torch.save({"net_state_dict": state}, broken)
    with pytest.raises(RuntimeError, match="linear7.bn.running_var"):
        load_mobilefacenet(broken)
    with pytest.raises(FileNotFoundError, match="tiktokfer fetch"):
        MobileFaceNetEmbedder(tmp_path / "missing.ckpt")


@pytest.fixture(scope="module")
def photos():
    """Every photo of ``faces/<person>/`` as ``(person, BGR image, landmarks, box)``, via RetinaFace."""
    files = sorted(p for p in (media_dir() / "faces").glob("*/*") if p.suffix.lower() in {".jpg", ".png"})
    images = [np.asarray(Image.open(p).convert("RGB"))[..., ::-1].copy() for p in files]
    detector = FaceDetector(destination_of(RETINAFACE_WEIGHTS), device="cpu")
    detections = detector.detect(images)
    assert all(len(d) == 1 for d in detections), [len(d) for d in detections]
    people = [p.parent.name for p in files]
    assert len(set(people)) >= 5 and len(files) >= 10
    return [(person, image, np.array(d[0].landmarks), d[0].box) for person, image, d in zip(people, images, detections)]


@pytest.fixture(scope="module")
def mobilefacenet():
    return build_embedder("mobilefacenet", weights_path=MOBILEFACENET, device="cpu", batch_size=4)


@pytest.fixture(scope="module")
def aligned_embeddings(photos, mobilefacenet):
    """Embeddings of every photo, aligned on its landmarks (batch size 4: several batches)."""
    return mobilefacenet.embed([p[1] for p in photos], [p[2] for p in photos])


def _pair_similarities(people: list[str], embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    similarity = embeddings @ embeddings.T
    same, different = [], []
    for a, b in itertools.combinations(range(len(people)), 2):
        (same if people[a] == people[b] else different).append(similarity[a, b])
    return np.array(same), np.array(different)


def test_mobilefacenet_embeddings_are_unit_norm_and_batch_independent(photos, mobilefacenet, aligned_embeddings):
    assert isinstance(mobilefacenet, FaceEmbedder) and mobilefacenet.dim == 256
    assert aligned_embeddings.shape == (len(photos), 256) and aligned_embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(aligned_embeddings, axis=1), 1.0, atol=1e-5)
    one_by_one = np.vstack([mobilefacenet.embed([image], [landmarks]) for _, image, landmarks, _ in photos[:3]])
    np.testing.assert_allclose(one_by_one, aligned_embeddings[:3], atol=1e-5)
    assert mobilefacenet.embed([], []).shape == (0, 256)


def test_mirrored_face_swaps_the_two_halves(photos, mobilefacenet, aligned_embeddings):
    """The second half embeds the horizontal mirror: mirroring the photo swaps the halves."""
    mirrored = [np.ascontiguousarray(image[:, ::-1]) for _, image, _, _ in photos]
    mirrored_landmarks = [
        np.stack([image.shape[1] - 1 - lm[:, 0], lm[:, 1]], axis=1)[MIRRORED_ORDER] for _, image, lm, _ in photos
    ]
    flipped = mobilefacenet.embed(mirrored, mirrored_landmarks)
    swapped = np.hstack([flipped[:, 128:], flipped[:, :128]])
    agreement = (aligned_embeddings * swapped).sum(axis=1)
    assert agreement.min() > 0.97, agreement


def test_aligned_mobilefacenet_separates_people(photos, aligned_embeddings):
    same, different = _pair_similarities([p[0] for p in photos], aligned_embeddings)
    # Measured on the 13 photos: same person min 0.54 / mean 0.73, different max 0.19 / mean 0.02.
    assert same.min() > different.max() + 0.2, (same.min(), different.max())
    assert same.mean() > 0.6 and abs(different.mean()) < 0.1, (same.mean(), different.mean())


def test_unaligned_crops_separate_people_markedly_worse(photos, mobilefacenet, aligned_embeddings):
    """Detector box crops resized to 112x96 (no landmarks) lose the separation."""
    people = [p[0] for p in photos]
    crops = []
    for _, image, _, box in photos:
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        crops.append(np.ascontiguousarray(image[y1:y2, x1:x2]))
    unaligned_same, unaligned_different = _pair_similarities(people, mobilefacenet.embed(crops, None))
    aligned_same, aligned_different = _pair_similarities(people, aligned_embeddings)
    # Measured: unaligned same min 0.26 < different max 0.37; mean gap 0.48 against 0.71 aligned.
    assert unaligned_same.min() < unaligned_different.max()
    aligned_gap = aligned_same.mean() - aligned_different.mean()
    unaligned_gap = unaligned_same.mean() - unaligned_different.mean()
    assert aligned_gap > unaligned_gap + 0.15, (aligned_gap, unaligned_gap)


def test_mobilefacenet_checks_its_inputs(mobilefacenet):
    with pytest.raises(ValueError, match="2 images but 1 landmark"):
        mobilefacenet.embed([np.zeros((50, 50, 3), np.uint8)] * 2, [TEMPLATE_96X112])
    with pytest.raises(ValueError, match="image 0: expected an \\(H, W, 3\\) uint8 BGR array"):
        mobilefacenet.embed([np.zeros((50, 50, 3), np.float32)], [TEMPLATE_96X112])


# --- open_clip ------------------------------------------------------------------------

SMALL_CLIP = "ViT-S-32-alt"  # the smallest built-in ViT: random init in about a second


@pytest.mark.slow
def test_open_clip_random_init_is_deterministic_and_loads_a_local_checkpoint(photos, tmp_path):
    images = [p[1] for p in photos[:3]]
    torch.manual_seed(0)
    first = OpenClipEmbedder(SMALL_CLIP, pretrained=None, batch_size=2)
    embeddings = first.embed(images, None)
    assert first.dim == 256 and embeddings.shape == (3, 256) and embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    assert first.name == f"open_clip:{SMALL_CLIP}:random"

    torch.manual_seed(0)
    np.testing.assert_allclose(OpenClipEmbedder(SMALL_CLIP).embed(images), embeddings, atol=1e-5)

    checkpoint = tmp_path / "clip.pt"
    torch.save(first.model.state_dict(), checkpoint)
    torch.manual_seed(1)  # would give other weights if the file were not loaded
    from_file = build_embedder("open_clip", model_name=SMALL_CLIP, pretrained=checkpoint)
    np.testing.assert_allclose(from_file.embed(images), embeddings, atol=1e-5)
    assert from_file.name == f"open_clip:{SMALL_CLIP}:clip.pt"


def test_open_clip_unknown_tag_is_a_clear_error():
    expected = "'no_such_tag' is neither a file nor a known tag.*laion2b_s34b_b79k"
    with pytest.raises(OpenClipWeightsMissing, match=expected):
        OpenClipEmbedder("ViT-B-32", pretrained="no_such_tag")


def test_open_clip_tag_missing_from_the_cache_is_a_clear_error(tmp_path):
    with pytest.raises(OpenClipWeightsMissing) as error:
        OpenClipEmbedder("ViT-B-32", pretrained="laion2b_s34b_b79k", cache_dir=tmp_path)
    message = str(error.value)
    assert "'ViT-B-32'" in message and "'laion2b_s34b_b79k'" in message
    assert "laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in message and "pretrained=<path" in message


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="unknown embedding backend 'facenet'.*mobilefacenet.*open_clip"):
        build_embedder("facenet")
