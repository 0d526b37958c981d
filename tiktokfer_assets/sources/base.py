"""The video-source interface every source (local folder, yt-dlp, URL list) implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


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
