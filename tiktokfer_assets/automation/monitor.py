"""Does a watch-listed person appear in a video? The trending monitor's core, free of Dagster.

The face-monitor tutorial (``seeds/face_monitor_tutorial.txt``) classifies sampled
frames of each new trending video and calls the person present when at least a
third of the frames show them. Here a frame "shows" a person when any face the
detector finds in it is close to one of that person's reference photos: cosine
similarity of face-recognition embeddings (aligned on the detector's landmarks)
at or above a threshold. Embeddings replace the tutorial's per-person classifier,
so adding a person to the watch list is adding a folder of photos, no training.

Frames come from :func:`iter_frames` (one decode pass, every ``every_s`` seconds,
up to ``max_seconds``), faces from :class:`FaceDetector`, embeddings from a
:class:`FaceEmbedder` (L2-normalised, so a dot product is the cosine).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tiktokfer_assets.identity.thresholds import SAME_PERSON_SIMILARITY
from tiktokfer_assets.media.frames import iter_frames
from tiktokfer_assets.vision.crops import PHOTO_SUFFIXES, decode_image

if TYPE_CHECKING:  # both import torch
    from tiktokfer_assets.identity.embedders import FaceEmbedder
    from tiktokfer_assets.vision.detector import FaceDetector

DEFAULT_SHARE = 1 / 3  # the tutorial's rule: present in at least a third of the frames
DEFAULT_SIMILARITY = SAME_PERSON_SIMILARITY["mobilefacenet"]


class MonitorError(ValueError):
    """The watch list cannot be used (an empty folder, a reference photo without a face)."""


@dataclass(frozen=True)
class PersonMatch:
    """How much of a video one watch-listed person is in."""

    person: str
    frames_matched: int
    frames_sampled: int
    best_similarity: float  # over all sampled faces (-1 when no face was seen)
    first_seen_s: float | None  # timestamp of the first matching frame
    alert: bool

    @property
    def share(self) -> float:
        return self.frames_matched / self.frames_sampled if self.frames_sampled else 0.0


@dataclass(frozen=True)
class MonitorResult:
    video_path: str
    frames_sampled: int
    frames_with_faces: int
    people: dict[str, PersonMatch]

    @property
    def alerts(self) -> list[PersonMatch]:
        return [match for match in self.people.values() if match.alert]


def _face_embeddings(
    images: Sequence[np.ndarray], detector: FaceDetector, embedder: FaceEmbedder
) -> list[np.ndarray]:
    """Per image, the ``(faces, dim)`` embeddings of every face found in it (aligned on its landmarks)."""
    detections = detector.detect(images)
    faces = [
        (images[i], np.asarray(d.landmarks, dtype=np.float64)) for i, found in enumerate(detections) for d in found
    ]
    if not faces:
        return [np.empty((0, embedder.dim), dtype=np.float32) for _ in images]
    vectors = embedder.embed([image for image, _ in faces], [points for _, points in faces])
    return np.split(vectors, np.cumsum([len(found) for found in detections])[:-1])


def reference_embeddings(
    watchlist_dir: str | Path, detector: FaceDetector, embedder: FaceEmbedder
) -> dict[str, np.ndarray]:
    """Per person (a sub-folder of ``watchlist_dir``), one embedding per photo: its most confident face.

    Raises :class:`MonitorError` for a folder without people or photos, or a photo
    without a face: a watch list that silently lost a photo would miss its person.
    """
    root = Path(watchlist_dir)
    people = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not people:
        raise MonitorError(f"watch list {root} has no person folders (expected {root}/<person>/<photo>.jpg)")
    references = {}
    for folder in people:
        photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
        if not photos:
            raise MonitorError(f"watch list person {folder.name!r} has no photos in {folder}")
        images = [decode_image(p.read_bytes()) for p in photos]
        detections = detector.detect(images)
        faceless = [p.name for p, found in zip(photos, detections, strict=True) if not found]
        if faceless:
            raise MonitorError(f"no face found in reference photos {faceless} of {folder.name!r}")
        best = [found[0] for found in detections]  # the detector sorts by score
        references[folder.name] = embedder.embed(images, [np.asarray(d.landmarks, dtype=np.float64) for d in best])
    return references


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def monitor_video(
    video_path: str | Path,
    reference_embeddings: Mapping[str, np.ndarray],
    detector: FaceDetector,
    embedder: FaceEmbedder,
    every_s: float = 0.5,
    share: float = DEFAULT_SHARE,
    similarity_threshold: float = DEFAULT_SIMILARITY,
    *,
    max_seconds: float = 60.0,
    batch_frames: int = 16,
) -> MonitorResult:
    """Which watch-listed people appear in at least ``share`` of the video's sampled frames.

    ``reference_embeddings``: person -> ``(photos, dim)`` L2-normalised embeddings
    (:func:`reference_embeddings`). A frame matches a person when any of its faces
    has cosine similarity >= ``similarity_threshold`` with any of the person's
    photos. Frames are processed ``batch_frames`` at a time (one detector call and
    one embedder call per batch). A video that stops decoding part-way raises
    :class:`~tiktokfer_assets.media.frames.FrameExtractionError`.
    """
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    people = sorted(reference_embeddings)
    matched = {person: [] for person in people}  # timestamps of matching frames
    best = dict.fromkeys(people, -1.0)
    sampled = with_faces = 0
    for chunk in _chunks(iter_frames(video_path, every_s, max_seconds), batch_frames):
        times = [t for t, _ in chunk]
        sampled += len(chunk)
        embeddings = _face_embeddings([frame for _, frame in chunk], detector, embedder)
        for t, faces in zip(times, embeddings, strict=True):
            if not len(faces):
                continue
            with_faces += 1
            for person in people:
                similarity = float(np.max(faces @ reference_embeddings[person].T))
                best[person] = max(best[person], similarity)
                if similarity >= similarity_threshold:
                    matched[person].append(t)
    results = {
        person: PersonMatch(
            person=person,
            frames_matched=len(matched[person]),
            frames_sampled=sampled,
            best_similarity=best[person],
            first_seen_s=matched[person][0] if matched[person] else None,
            alert=sampled > 0 and len(matched[person]) >= share * sampled - 1e-9,
        )
        for person in people
    }
    return MonitorResult(str(video_path), sampled, with_faces, results)
