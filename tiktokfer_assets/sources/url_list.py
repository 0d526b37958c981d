"""Videos named in a file: what a researcher exports from TikTok's Research API or collects by hand.

Two formats:

* CSV with a header: a ``url`` column, or a ``video_id`` / ``id`` column of TikTok
  post ids (other columns are ignored);
* TXT: one URL or TikTok post id a line; blank lines and ``#`` comments are ignored.

Listing reads the file only (no request); downloading goes through a
:class:`YtDlpSource`, so its options (cookies, proxy, impersonation, ...) apply.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from tiktokfer_assets.sources.base import INVALID, FetchedVideo, VideoRef
from tiktokfer_assets.sources.ytdlp import YtDlpSource, tiktok_video_url, video_id_from_url

_URL_COLUMNS = ("url",)
_ID_COLUMNS = ("video_id", "id")


def _entry_to_ref(entry: str, path: Path, line: int) -> VideoRef:
    """A ref for one URL or bare TikTok post id of ``path``; anything else is an :data:`INVALID` ref
    ``line-<n>`` whose reason names the line, never its text (the file may be something else entirely)."""
    if "://" in entry:
        return VideoRef(video_id_from_url(entry), entry)
    try:
        return VideoRef(entry, tiktok_video_url(entry))
    except ValueError:
        reason = f"{path.name} line {line} is neither a URL nor a TikTok video id (6-25 digits)"
        return VideoRef(f"line-{line}", f"{path}:{line}", {INVALID: reason})


def read_url_list(path: Path) -> list[VideoRef]:
    """Every entry of the CSV or TXT file at ``path``, in file order, first occurrence of each id kept."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"URL list {path} does not exist")
    refs: list[VideoRef] = []
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = {name.strip().lower(): name for name in reader.fieldnames or []}
            column = next((columns[c] for c in _URL_COLUMNS + _ID_COLUMNS if c in columns), None)
            if column is None:
                # the header is not echoed: the file may be something else entirely
                raise ValueError(f"{path}: a CSV URL list needs a 'url', 'video_id' or 'id' column in its header")
            for line, row in enumerate(reader, start=2):
                value = (row.get(column) or "").strip()
                if value:
                    refs.append(_entry_to_ref(value, path, line))
    else:
        for line, text in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
            # A comment is a whole line starting with '#', or '#' after a space (a URL's own '#' is kept).
            value = re.split(r"\s#", text.strip(), maxsplit=1)[0].strip()
            if value and not value.startswith("#"):
                refs.append(_entry_to_ref(value, path, line))
    unique: dict[str, VideoRef] = {}
    for ref in refs:
        unique.setdefault(ref.video_id, ref)
    return list(unique.values())


@dataclass(frozen=True)
class UrlListSource:
    """The videos listed in ``path``, downloaded with ``fetcher`` (a default :class:`YtDlpSource`)."""

    path: Path
    fetcher: YtDlpSource = field(default_factory=lambda: YtDlpSource([]))

    def list_videos(self, limit: int) -> list[VideoRef]:
        return read_url_list(self.path)[:limit]

    def fetch(self, ref: VideoRef, dest_dir: Path) -> FetchedVideo:
        return self.fetcher.fetch(ref, dest_dir)
