"""PHash near-duplicate removal on face crops of the real photos in ``media_dir()/faces``."""

from __future__ import annotations

import io

import numpy as np
import polars as pl
import pytest
from imagededup.methods import PHash
from PIL import Image, ImageFilter

from tiktokfer_assets.identity.dedup import WORKING_SIDE, find_duplicate_groups, load_rgb, phash, select_unique
from tiktokfer_assets.paths import media_dir

pytestmark = pytest.mark.media

# Face boxes (x1, y1, x2, y2) of RetinaFace MobileNet-0.25 on these photos.
FACE_BOXES = {
    "obama/1.jpg": (377, 77, 605, 420),
    "obama/2.jpg": (203, 223, 474, 630),
    "obama/3.jpg": (645, 269, 906, 608),
    "obama/4.jpg": (538, 117, 891, 635),
    "obama/5.jpg": (392, 38, 493, 187),
    "biden/1.jpg": (424, 175, 707, 567),
    "biden/2.jpg": (428, 133, 873, 784),
}


def _photo(name: str) -> Image.Image:
    return Image.open(media_dir() / "faces" / name).convert("RGB")


def _crop(name: str, shift: int = 0) -> np.ndarray:
    """The face crop of a photo as a BGR array (the detector's convention), optionally shifted diagonally."""
    x1, y1, x2, y2 = FACE_BOXES[name]
    return np.asarray(_photo(name).crop((x1 + shift, y1 + shift, x2 + shift, y2 + shift)))[..., ::-1].copy()


def _reencoded(bgr: np.ndarray) -> bytes:
    """JPEG quality 60 of the crop shrunk to 93 %: what a re-upload or re-crop does to it."""
    rgb = Image.fromarray(np.ascontiguousarray(bgr[..., ::-1]))
    smaller = rgb.resize((round(rgb.width * 0.93), round(rgb.height * 0.93)), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    smaller.save(buffer, "JPEG", quality=60)
    return buffer.getvalue()


def _distance(a: np.ndarray, b: np.ndarray) -> int:
    return int(PHash.hamming_distance(phash(a[..., ::-1].copy()), phash(b[..., ::-1].copy())))


@pytest.fixture(scope="module")
def crops() -> dict[str, np.ndarray]:
    return {name: _crop(name) for name in FACE_BOXES}


def test_copies_are_grouped_and_distinct_photos_are_not(crops, tmp_path):
    saved = tmp_path / "copy.png"
    Image.fromarray(crops["obama/1.jpg"][..., ::-1].copy()).save(saved)
    images = {
        "original": crops["obama/1.jpg"],
        "exact_copy": crops["obama/1.jpg"].copy(),
        "reencoded": _reencoded(crops["obama/1.jpg"]),
        "file_copy": saved,
        "obama2": crops["obama/2.jpg"],
        "obama3": crops["obama/3.jpg"],
        "obama4": crops["obama/4.jpg"],
        "biden1": crops["biden/1.jpg"],
        "biden2": crops["biden/2.jpg"],
    }
    groups = find_duplicate_groups(images)
    copies = ["exact_copy", "file_copy", "original", "reencoded"]
    distinct = [["obama2"], ["obama3"], ["obama4"], ["biden1"], ["biden2"]]
    assert sorted(sorted(g) for g in groups) == sorted([copies, *distinct])


def test_the_same_portrait_from_another_source_is_a_duplicate(crops):
    """obama/5.jpg is the official portrait of obama/1.jpg at a quarter of the resolution."""
    assert _distance(crops["obama/1.jpg"], crops["obama/5.jpg"]) <= 10
    assert find_duplicate_groups({"a": crops["obama/1.jpg"], "b": crops["obama/5.jpg"]}) == [["a", "b"]]


def test_groups_are_connected_components_of_the_threshold_relation():
    """Crops shifted by 0, 2 and 5 px: 0~2 and 2~5 are within the threshold, 0~5 is not."""
    a, b, c = (_crop("obama/1.jpg", shift) for shift in (0, 2, 5))
    assert _distance(a, b) <= 10 and _distance(b, c) <= 10 and _distance(a, c) > 10  # the chain exists
    assert find_duplicate_groups({"a": a, "b": b, "c": c}) == [["a", "b", "c"]]
    assert find_duplicate_groups({"a": a, "c": c}) == [["a"], ["c"]]


def test_select_unique_keeps_the_highest_score_per_group_within_each_individual(crops):
    original = crops["obama/1.jpg"]
    faces = pl.DataFrame(
        {
            "face_id": ["o1", "o1_copy", "o1_reenc", "o2", "o3", "o4", "b1", "b2", "b1_copy", "o1_in_b"],
            "individual_id": [0, 0, 0, 0, 0, 0, 1, 1, 1, 1],
            "score": [0.95, 0.97, 0.99, 0.90, 0.91, 0.92, 0.99, 0.98, 0.93, 0.90],
            "label": ["happy"] * 10,
        }
    )
    images = {
        "o1": original,
        "o1_copy": original.copy(),
        "o1_reenc": _reencoded(original),
        "o2": crops["obama/2.jpg"],
        "o3": crops["obama/3.jpg"],
        "o4": crops["obama/4.jpg"],
        "b1": crops["biden/1.jpg"],
        "b2": crops["biden/2.jpg"],
        "b1_copy": crops["biden/1.jpg"].copy(),
        # A copy of an individual-0 face filed under individual 1: never compared across individuals.
        "o1_in_b": original.copy(),
    }
    unique = select_unique(faces, images)
    assert unique["face_id"].to_list() == ["o1_reenc", "o2", "o3", "o4", "b1", "b2", "o1_in_b"]
    duplicates = dict(zip(unique["face_id"], unique["duplicates"].to_list()))
    assert duplicates == {
        "o1_reenc": ["o1", "o1_copy"],
        "o2": [],
        "o3": [],
        "o4": [],
        "b1": ["b1_copy"],
        "b2": [],
        "o1_in_b": [],
    }
    assert unique["label"].to_list() == ["happy"] * 7
    assert unique["sharpness"].dtype == pl.Float64 and (unique["sharpness"] > 0).all()


def test_select_unique_breaks_score_ties_by_sharpness_and_reads_paths(crops, tmp_path):
    sharp = crops["obama/2.jpg"]
    blurred = np.asarray(Image.fromarray(sharp).filter(ImageFilter.GaussianBlur(1.5)))
    assert _distance(sharp, blurred) <= 10  # the blur keeps them duplicates
    paths = {}
    for face_id, image in {"blurred": blurred, "sharp": sharp, "other": crops["biden/2.jpg"]}.items():
        paths[face_id] = tmp_path / f"{face_id}.png"
        Image.fromarray(image[..., ::-1].copy()).save(paths[face_id])
    faces = pl.DataFrame(
        {
            "face_id": list(paths),
            "individual_id": ["p", "p", "p"],
            "score": [0.99, 0.99, 0.5],
            "crop_path": [str(p) for p in paths.values()],
        }
    )
    unique = select_unique(faces, path_column="crop_path")
    assert unique["face_id"].to_list() == ["sharp", "other"]
    assert unique["duplicates"].to_list() == [["blurred"], []]


def test_select_unique_reports_bad_input(crops):
    faces = pl.DataFrame({"face_id": ["a", "b"], "individual_id": [0, 0], "score": [0.9, 0.8]})
    with pytest.raises(ValueError, match="lacks column\\(s\\) \\['score'\\]"):
        select_unique(faces.drop("score"), {"a": crops["obama/1.jpg"], "b": crops["obama/2.jpg"]})
    with pytest.raises(KeyError, match="no image for 1 face"):
        select_unique(faces, {"a": crops["obama/1.jpg"]})
    with pytest.raises(ValueError, match="path_column"):
        select_unique(faces)


def test_select_unique_never_removes_a_face_of_another_expression(crops):
    """Copies of one crop under three expressions (one null) and two of one expression: only the latter merge;
    of those the more frontal face wins when the rounded scores tie (0.991 and 0.994 round to 0.99)."""
    photo = crops["obama/1.jpg"]
    faces = pl.DataFrame({
        "face_id": ["neutral", "none", "happy_a", "happy_b", "sad"],
        "individual_id": ["p"] * 5,
        "expression": ["neutral", None, "happiness", "happiness", "sadness"],
        "score": [0.999, 0.999, 0.994, 0.991, 0.5],
        "frontality": [1.0, 1.0, 0.6, 0.9, 1.0],
    })
    images = {face_id: photo.copy() for face_id in faces["face_id"]}
    unique = select_unique(faces, images, group_by=("individual_id", "expression"))
    assert unique["face_id"].to_list() == ["neutral", "none", "happy_b", "sad"]
    assert unique["duplicates"].to_list() == [[], [], ["happy_a"], []]
    assert select_unique(faces, images)["face_id"].to_list() == ["neutral"]  # by individual only: labels lost


def test_a_large_crop_is_hashed_from_a_reduced_decode_and_stays_a_duplicate(crops):
    """A 720p close-up's context crop is ~1100 px: hashed from a JPEG decoded at a reduced scale (short side
    256-511 px), it keeps its duplicate, and an array of the same image is reduced alike."""
    original = crops["obama/4.jpg"]  # 353x518
    rgb = Image.fromarray(np.ascontiguousarray(original[..., ::-1]))
    large = rgb.resize((rgb.width * 3, rgb.height * 3), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    large.save(buffer, "JPEG", quality=90)
    for source in (buffer.getvalue(), np.asarray(large)[..., ::-1].copy()):
        reduced = load_rgb(source, WORKING_SIDE)
        assert WORKING_SIDE <= min(reduced.shape[:2]) < 2 * WORKING_SIDE and reduced.shape[2] == 3
    assert load_rgb(buffer.getvalue()).shape == (large.height, large.width, 3)  # no min_side: full size
    assert find_duplicate_groups({"large": buffer.getvalue(), "original": original, "other": crops["obama/2.jpg"]}) \
        == [["large", "original"], ["other"]]
