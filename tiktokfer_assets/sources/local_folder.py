"""Videos from a folder on this machine (the demo, tests, and hand-collected sets)."""

from __future__ import annotations

import re
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from tiktokfer_assets.sources.base import INVALID, FetchedVideo, FetchError, VideoRef, path_inside
from tiktokfer_assets.weights import sha256_of as sha256_file

VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi"}


def video_id_from_name(name: str) -> str:
    """A stable id from a file name: lower-case letters, digits, ``_`` and ``-`` (at most 128)."""
    return re.sub(r"[^a-z0-9_-]+", "_", Path(name).stem.lower()).strip("_")[:128] or "video"


def file_ref(path: Path, video_id: str) -> VideoRef:
    """The ref of one local file, with its content hash (so an unchanged file is not stored again).

    A path that is not a readable regular file (a dangling link, a folder named ``x.mp4``,
    no permission) is a ref marked :data:`INVALID` with the reason.
    """
    try:
        if not path.is_file():
            raise IsADirectoryError(path) if path.is_dir() else FileNotFoundError(path)
        return VideoRef(video_id, str(path), {"sha256": sha256_file(path)})
    except OSError as exc:
        return VideoRef(video_id, str(path), {INVALID: f"{path.name} is not a readable file ({type(exc).__name__})"})


@dataclass(frozen=True)
class LocalFolderSource:
    folder: Path
    local = True  # files on this machine: the download pool copies them without a child process

    def list_videos(self, limit: int) -> list[VideoRef]:
        if not self.folder.is_dir():
            raise FetchError(f"video folder {self.folder} does not exist")
        by_id: dict[str, list[Path]] = defaultdict(list)
        for path in sorted(p for p in self.folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES):
            by_id[video_id_from_name(path.name)].append(path)
        refs = []
        for video_id, paths in list(by_id.items())[:limit]:
            if len(paths) == 1:
                refs.append(file_ref(paths[0], video_id))
            else:  # ambiguous: neither file is taken, the failure says which to rename
                names = ", ".join(p.name for p in paths)
                refs.append(VideoRef(video_id, str(self.folder), {INVALID: f"{names} all give video id {video_id!r}; "
                                                                           "rename all but one"}))
        return refs

    def fetch(self, ref: VideoRef, dest_dir: Path) -> FetchedVideo:
        src = Path(ref.url)
        if not src.is_file():
            raise FetchError(f"{src} no longer exists")
        dest = path_inside(dest_dir, f"{ref.video_id}{src.suffix.lower()}")
        shutil.copyfile(src, dest)
        return FetchedVideo(ref=ref, path=dest, metadata={"url": str(src)})
