"""Videos from a folder on this machine (the demo, tests, and hand-collected sets)."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from tiktokfer_assets.fetch import sha256_of as sha256_file
from tiktokfer_assets.sources.base import FetchedVideo, FetchError, VideoRef

VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi"}


def video_id_from_name(name: str) -> str:
    """A stable id from a file name: lower-case letters, digits, ``_`` and ``-``."""
    return re.sub(r"[^a-z0-9_-]+", "_", Path(name).stem.lower()).strip("_") or "video"


@dataclass(frozen=True)
class LocalFolderSource:
    folder: Path

    def list_videos(self, limit: int) -> list[VideoRef]:
        if not self.folder.is_dir():
            raise FetchError(f"video folder {self.folder} does not exist")
        files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        # the content hash lets the videos asset skip files it already stored unchanged
        return [VideoRef(video_id_from_name(p.name), str(p), {"sha256": sha256_file(p)}) for p in files[:limit]]

    def fetch(self, ref: VideoRef, dest_dir: Path) -> FetchedVideo:
        src = Path(ref.url)
        if not src.is_file():
            raise FetchError(f"{src} no longer exists")
        dest = dest_dir / f"{ref.video_id}{src.suffix.lower()}"
        shutil.copyfile(src, dest)
        return FetchedVideo(ref=ref, path=dest, metadata={"url": str(src)})
