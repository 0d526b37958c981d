"""The video-source interface every source (local folder, yt-dlp, URL list) implements."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

# ``VideoRef.info`` key of an entry a listing found but cannot fetch (its value is the reason):
# the download pool records it as a failure without fetching, and the rest of the listing goes on.
INVALID = "invalid"
# ``VideoRef.info`` key of a list (a user page, a collection) that could not be expanded: the ref is tried as
# one video, and the listing counts as incomplete (stored videos it does not name are kept).
LISTING_ERROR = "listing_error"
# ``VideoRef.info`` key of the URL a stored video must have come from to be reused (the baseline's ``url``).
SOURCE_URL = "source_url"
# Every video id (baseline and performances, from any source) becomes a file name and an object key.
VIDEO_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")


def check_video_id(video_id: str) -> str:
    """``video_id`` when it matches :data:`VIDEO_ID_PATTERN`, else a one-line ``ValueError``."""
    if not isinstance(video_id, str) or not VIDEO_ID_PATTERN.fullmatch(video_id):
        raise ValueError(f"video id {video_id!r} is invalid: use 1-128 letters, digits, '_' or '-'")
    return video_id


def path_inside(folder: Path, name: str) -> Path:
    """``folder/name``, refused (``ValueError``) when it resolves outside ``folder``."""
    base = Path(folder).resolve()
    path = (base / name).resolve()
    if not path.is_relative_to(base) or path == base:
        raise ValueError(f"{name!r} resolves outside {base}")
    return path


class FetchError(RuntimeError):
    """A video could not be fetched. ``transient`` errors are worth retrying."""

    def __init__(self, message: str, *, transient: bool = False):
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class VideoRef:
    """One video a source knows about, before it is downloaded."""

    video_id: str
    url: str
    info: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        check_video_id(self.video_id)


@dataclass
class FetchedVideo:
    """A video downloaded to a local file, with whatever metadata the source knows.

    ``metadata`` uses the column names of the ``videos`` table (author, description,
    hashtags, sound_id, sound_title, create_time, view_count, like_count,
    comment_count, share_count, ...); keys the source does not know are left out.
    ``watermarked`` is True when the file carries the platform watermark and must be
    masked before it is stored.
    """

    ref: VideoRef
    path: Path
    metadata: dict[str, Any] = field(default_factory=dict)
    watermarked: bool = False
    format_id: str | None = None
    info_json: str | None = None


class VideoSource(Protocol):
    def list_videos(self, limit: int) -> list[VideoRef]:
        """Up to ``limit`` videos of the challenge, in a stable order."""
        ...

    def fetch(self, ref: VideoRef, dest_dir: Path) -> FetchedVideo:
        """Download ``ref`` into ``dest_dir``; raise :class:`FetchError` on failure."""
        ...
