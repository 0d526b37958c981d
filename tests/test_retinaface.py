"""RetinaFace MobileNet-0.25, the batched detector and face crops, on the real photos.

Expected counts are the ones checked by eye for ``media_dir()`` (faces/<person>/*:
exactly one face each; scenes as below). Rotation tests build sideways images with
``np.rot90`` and compute the expected box independently, by rotating a box mask.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tiktokfer_assets.models import RETINAFACE_WEIGHTS
from tiktokfer_assets.paths import media_dir
from tiktokfer_assets.vision.crops import contact_sheet, encode_jpeg, square_crop
from tiktokfer_assets.vision.detector import Detection, FaceDetector
from tiktokfer_assets.vision.retinaface import CheckpointError, load_retinaface, prior_boxes
from tiktokfer_assets.weights import destination_of

pytestmark = pytest.mark.media

WEIGHTS = destination_of(RETINAFACE_WEIGHTS)
PERSON_PHOTOS = sorted(p for p in (media_dir() / "faces").glob("*/*") if p.suffix in {".jpg", ".png"})
SCENE_COUNTS = {
    "two_people.jpg": 2,
    "kit_with_rose.jpg": 2,
    "obama_and_biden.jpg": 3,
    "johnsnow_test1.jpg": 1,
}


def load_bgr(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))[:, :, ::-1].copy()


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def thumbnail(image: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize((48, 48), Image.Resampling.BILINEAR), dtype=float)


def rotated_box(box, shape: tuple[int, int], k: int) -> tuple[int, int, int, int]:
    """Where ``box`` lands in ``np.rot90(image, k)``: rotate a filled mask and take its extent."""
    mask = np.zeros(shape, dtype=bool)
    x1, y1, x2, y2 = (round(v) for v in box)
    mask[y1:y2, x1:x2] = True
    rows, cols = np.nonzero(np.rot90(mask, k))
    return cols.min(), rows.min(), cols.max() + 1, rows.max() + 1


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The test machine's few cores are shared: one intra-op thread avoids OpenMP barrier
    stalls under oversubscription (several times faster there than two)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector(WEIGHTS, device="auto", batch_size=4)


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    scenes = [media_dir() / "scenes" / name for name in SCENE_COUNTS]
    return {str(p.relative_to(media_dir())): load_bgr(p) for p in [*PERSON_PHOTOS, *scenes]}


@pytest.fixture(scope="module")
def batched(detector, photos) -> dict[str, list[Detection]]:
    """All photos through one ``detect`` call (several sizes, several batches)."""
    return dict(zip(photos, detector.detect(list(photos.values()))))


def test_media_has_the_expected_photos():
    assert len({p.parent.name for p in PERSON_PHOTOS}) >= 5 and len(PERSON_PHOTOS) >= 13


@pytest.mark.parametrize("photo", [str(p.relative_to(media_dir())) for p in PERSON_PHOTOS])
def test_single_person_photo_has_one_face_with_sensible_landmarks(batched, photos, photo):
    (face,) = batched[photo]
    assert face.score >= 0.9 and face.rotation == 0
    x1, y1, x2, y2 = face.box
    height, width = photos[photo].shape[:2]
    assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    assert (x2 - x1) * (y2 - y1) > 0.01 * width * height  # a portrait, not a speck
    (lex, ley), (rex, rey), (nx, ny), (lmx, lmy), (rmx, rmy) = face.landmarks
    assert max(ley, rey) < ny < min(lmy, rmy), "eyes above the nose above the mouth"
    assert lex < rex and lmx < rmx, "left points left of right points"
    for x, y in face.landmarks:
        assert x1 <= x <= x2 and y1 <= y <= y2


@pytest.mark.parametrize(("scene", "count"), SCENE_COUNTS.items())
def test_scene_face_counts(batched, scene, count):
    faces = batched[f"scenes/{scene}"]
    assert len(faces) == count
    assert all(f.score >= 0.9 and f.rotation == 0 for f in faces)
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)


def test_obama_and_biden_child_is_the_small_face_at_lower_right(batched, photos):
    faces = batched["scenes/obama_and_biden.jpg"]
    height, width = photos["scenes/obama_and_biden.jpg"].shape[:2]
    child = min(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    cx, cy = (child.box[0] + child.box[2]) / 2, (child.box[1] + child.box[3]) / 2
    assert cx > width / 2 and cy > height / 2
    adults = [f for f in faces if f is not child]
    assert all(cy > f.box[3] and cx > f.box[2] for f in adults)


def test_no_face_in_face_free_images(detector):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
    # A plain "landscape": sky gradient over a noisy green field.
    sky = np.linspace(255, 120, 200)[:, None, None] * np.array([1.0, 0.8, 0.5])  # BGR
    landscape = np.empty((360, 640, 3))
    landscape[:200] = sky
    landscape[200:] = np.array([40.0, 140.0, 60.0]) + rng.normal(0, 15, size=(160, 640, 3))
    assert detector.detect([noise, landscape.clip(0, 255).astype(np.uint8)]) == [[], []]


def test_faces_cut_by_the_frame_edge_are_found_and_flagged(detector, photos, batched):
    # Each person photo cut through its face's centre, from each side: half the face is outside
    # the frame, as in a close-up selfie. The whole faces are in the frame (not truncated).
    cut, expected = [], []
    for name in (str(p.relative_to(media_dir())) for p in PERSON_PHOTOS):
        (face,) = batched[name]
        x1, y1, x2, y2 = face.box
        cx, cy = round((x1 + x2) / 2), round((y1 + y2) / 2)
        image = photos[name]
        for part, visible in (
            (image[:, cx:], (0, y1, x2 - cx, y2)),
            (image[:, :cx], (x1, y1, cx, y2)),
            (image[cy:], (x1, 0, x2, y2 - cy)),
            (image[:cy], (x1, y1, x2, cy)),
        ):
            cut.append(np.ascontiguousarray(part))
            expected.append(visible)
    found = detector.detect(cut)
    hits = [any(iou(f.box, box) >= 0.5 and f.truncated for f in faces) for faces, box in zip(found, expected)]
    assert sum(hits) >= 0.9 * len(cut), f"{sum(hits)} of {len(cut)} half faces found"
    assert all(len(faces) <= 1 for faces in found)
    assert sum(f.truncated for faces in batched.values() for f in faces) <= 2  # whole faces: at most a chin at the edge


def test_batched_detection_equals_one_at_a_time(detector, photos, batched):
    for name, image in photos.items():
        single = detector.detect_one(image)
        assert len(single) == len(batched[name]), name
        for a, b in zip(single, batched[name]):
            assert np.abs(np.subtract(a.box, b.box)).max() <= 1.0, name
            assert abs(a.score - b.score) < 1e-3


@pytest.mark.parametrize("photo", ["faces/biden/1.jpg", "scenes/two_people.jpg"])
@pytest.mark.parametrize("k", [1, -1])
def test_sideways_photo_is_found_by_the_rotation_retry(detector, photos, batched, photo, k):
    upright = photos[photo]
    sideways = np.ascontiguousarray(np.rot90(upright, k))
    faces = detector.detect_one(sideways)
    assert len(faces) == len(batched[photo])
    assert all(f.rotation == -90 * k for f in faces), "the upright pass must miss; the retry finds them"
    # The recorded rotation turns the sideways image upright.
    assert np.array_equal(np.rot90(sideways, faces[0].rotation // 90), upright)
    expected = [rotated_box(f.box, upright.shape[:2], k) for f in batched[photo]]
    for face in faces:
        assert max(iou(face.box, e) for e in expected) >= 0.9
        x1, y1, x2, y2 = face.box
        assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in face.landmarks)
    # A crop with the rotation applied is upright again: close to the upright photo's crop,
    # much closer than the same crop left sideways.
    best = max(faces, key=lambda f: f.score)
    match = max(batched[photo], key=lambda f: iou(rotated_box(f.box, upright.shape[:2], k), best.box))
    reference = thumbnail(square_crop(upright, match.box))
    turned = np.abs(thumbnail(square_crop(sideways, best.box, rotation=best.rotation)) - reference).mean()
    unturned = np.abs(thumbnail(square_crop(sideways, best.box)) - reference).mean()
    assert turned < unturned / 2, (turned, unturned)


def test_checkpoint_with_module_prefix_loads(tmp_path):
    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    prefixed = tmp_path / "dataparallel.pth"
    torch.save({f"module.{k}": v for k, v in state.items()}, prefixed)
    a, b = load_retinaface(WEIGHTS), load_retinaface(prefixed)
    x = torch.randn(1, 3, 64, 96)
    with torch.inference_mode():
        assert all(torch.equal(u, v) for u, v in zip(a(x), b(x)))


def test_batch_norm_folding_keeps_the_outputs(photos):
    image = torch.from_numpy(photos["scenes/two_people.jpg"][:352, :640].copy()).permute(2, 0, 1).float()
    x = (image - torch.tensor([104.0, 117.0, 123.0]).view(3, 1, 1))[None]
    with torch.inference_mode():
        folded, plain = load_retinaface(WEIGHTS)(x), load_retinaface(WEIGHTS, fuse=False)(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in load_retinaface(WEIGHTS).modules())
    for a, b in zip(folded, plain):
        assert torch.allclose(a, b, atol=1e-3, rtol=1e-3)


def test_wrong_checkpoint_fails_clearly(tmp_path):
    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    renamed = tmp_path / "renamed.pth"
    torch.save({k.replace("ClassHead", "ClsHead"): v for k, v in state.items()}, renamed)
    with pytest.raises(
        CheckpointError,
        match=r"renamed\.pth is not a RetinaFace.*6 missing keys.*ClassHead.*6 unexpected keys.*ClsHead",
    ):
        load_retinaface(renamed)

    reshaped = tmp_path / "reshaped.pth"
    state["fpn.output1.0.weight"] = torch.zeros(64, 32, 1, 1)
    torch.save(state, reshaped)
    with pytest.raises(CheckpointError, match=r"(?s)shapes do not match.*fpn\.output1\.0\.weight"):
        load_retinaface(reshaped)

    other = tmp_path / "embedder.ckpt"
    torch.save({"net_state_dict": {}}, other)
    with pytest.raises(CheckpointError, match="expected a state dict of tensors"):
        load_retinaface(other)


def test_prior_boxes_match_the_network_outputs():
    model = load_retinaface(WEIGHTS)
    for height, width in [(360, 640), (361, 641), (640, 352)]:
        priors = prior_boxes(height, width)
        with torch.inference_mode():
            loc, scores, landmarks = model(torch.zeros(1, 3, height, width))
        assert priors.shape == (loc.shape[1], 4) and scores.shape[1] == landmarks.shape[1] == loc.shape[1]
        # First anchor: centre of the top-left stride-8 cell, 16 px wide.
        assert torch.allclose(priors[0], torch.tensor([4 / width, 4 / height, 16 / width, 16 / height]))
        assert prior_boxes(height, width) is priors  # cached per size


def test_square_crop_centres_pads_and_keeps_margin():
    image = np.arange(100 * 200 * 3, dtype=np.uint32).reshape(100, 200, 3).astype(np.uint8)
    crop = square_crop(image, (50, 20, 90, 80), margin=0.25)  # 40 x 60 box -> 90 px square
    assert crop.shape == (90, 90, 3)
    assert np.array_equal(crop, image[5:95, 25:115])
    corner = square_crop(image, (0, 0, 20, 20), margin=0.5)  # 40 px square centred on (10, 10)
    assert corner.shape == (40, 40, 3)
    assert not corner[:10].any() and not corner[:, :10].any()  # padding outside the image
    assert np.array_equal(corner[10:, 10:], image[:30, :30])
    assert np.array_equal(square_crop(image, (50, 20, 90, 80), 0.25, rotation=90), np.rot90(crop))


def test_contact_sheet_and_jpeg_decode(photos, batched):
    name = "scenes/obama_and_biden.jpg"
    crops = [square_crop(photos[name], f.box) for f in batched[name]] * 3  # 9 crops
    sheet = Image.open(io.BytesIO(contact_sheet(crops, columns=4, cell=64)))
    assert sheet.format == "PNG" and sheet.size == (4 * 64, 3 * 64)
    # The first cell is the first crop, resized and converted BGR -> RGB.
    cell = np.asarray(sheet)[:64, :64].astype(float)
    expected = np.asarray(Image.fromarray(crops[0][:, :, ::-1]).resize((64, 64))).astype(float)
    assert np.abs(cell - expected).mean() < 3
    assert not np.asarray(sheet)[2 * 64 :, 64:].any()  # cells after the last crop stay black
    jpeg = Image.open(io.BytesIO(encode_jpeg(crops[0], quality=90)))
    assert jpeg.format == "JPEG" and jpeg.size == crops[0].shape[1::-1]
    assert np.abs(np.asarray(jpeg).astype(float) - crops[0][:, :, ::-1]).mean() < 4
