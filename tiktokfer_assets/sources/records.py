"""Content records named in a file: any set of contents with their metadata (a content collection's input).

Two formats, by suffix:

* JSON Lines (``.jsonl``, ``.ndjson``): one JSON object a line; blank lines are ignored;
* CSV (``.csv``) with a header: one record a row (every value a string).

A record has an id (``content_id``, ``video_id`` or ``id``, the first present), a video
(``video_url``, ``url``, ``video_path`` or ``path``: a URL, fetched with yt-dlp, or a local
file, relative to the records file's folder) and any other fields, its metadata. The
whole record travels with the video (``videos.record_json``) to the collection's
``contents`` output. A record without an id or video, a line that is not a JSON object,
or a repeated id is listed as an :data:`INVALID` ref ``line-<n>`` whose reason names the
line, so it becomes a failure row and the rest of the file goes on.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tiktokfer_assets.sources.base import INVALID, FetchedVideo, VideoRef, check_video_id
from tiktokfer_assets.sources.local_folder import LocalFolderSource
from tiktokfer_assets.sources.ytdlp import YtDlpSource

# ``VideoRef.info`` key of the record a ref was listed from (a dict, as read)
RECORD = "record"
ID_FIELDS = ("content_id", "video_id", "id")
VIDEO_FIELDS = ("video_url", "url", "video_path", "path")
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")


def is_url(location: str) -> bool:
    return "://" in location


def _rows(path: Path) -> list[tuple[int, object]]:
    """(line number, parsed row) of every record of ``path``; a line that is not JSON parses to None."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return list(enumerate(csv.DictReader(handle), start=2))
    if path.suffix.lower() not in JSON_LINES_SUFFIXES:
        raise ValueError(f"{path}: a records file is JSON Lines ({', '.join(JSON_LINES_SUFFIXES)}) or CSV (.csv)")
    rows = []
    for line, text in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if text.strip():
            try:
                rows.append((line, json.loads(text)))
            except json.JSONDecodeError:
                rows.append((line, None))
    return rows


def _first(record: dict, names: tuple[str, ...]) -> str | None:
    value = next((record[name] for name in names if record.get(name) not in (None, "")), None)
    return None if value is None else str(value).strip()


def _ref(record: object, path: Path, line: int, seen: dict[str, int]) -> VideoRef:
    """The ref of one record; an :data:`INVALID` ``line-<n>`` ref when the record cannot be fetched."""

    def invalid(why: str) -> VideoRef:
        return VideoRef(f"line-{line}", f"{path}:{line}", {INVALID: f"{path.name} line {line}: {why}"})

    if not isinstance(record, dict):
        return invalid("not a JSON object")
    content_id, location = _first(record, ID_FIELDS), _first(record, VIDEO_FIELDS)
    if content_id is None:
        return invalid(f"no id (one of {', '.join(ID_FIELDS)})")
    try:
        check_video_id(content_id)
    except ValueError as exc:
        return invalid(str(exc))
    if content_id in seen:
        return invalid(f"id {content_id!r} repeats line {seen[content_id]}")
    seen[content_id] = line
    if location is None:
        return invalid(f"content {content_id!r} has no video (one of {', '.join(VIDEO_FIELDS)})")
    if not is_url(location):
        local = Path(location).expanduser()
        location = str(local if local.is_absolute() else (path.parent / local).resolve())
    return VideoRef(content_id, location, {RECORD: record})


def read_records(path: Path) -> list[VideoRef]:
    """Every record of the JSON Lines or CSV file at ``path`` as a ref, in file order."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"records file {path} does not exist")
    seen: dict[str, int] = {}
    return [_ref(record, path, line, seen) for line, record in _rows(path)]


def record_metadata(record: dict[str, Any]) -> dict[str, Any]:
    """A record's metadata: every field but its id and video."""
    return {k: v for k, v in record.items() if k not in ID_FIELDS + VIDEO_FIELDS}


@dataclass
class RecordsSource:
    """The contents of the records file ``path``: local videos are copied, URLs downloaded with ``fetcher``."""

    path: Path
    fetcher: YtDlpSource = field(default_factory=lambda: YtDlpSource([]))

    def __post_init__(self) -> None:
        # only local files: the download pool copies them without a child process (see download_pool)
        self.local = self.path.is_file() and not any(is_url(ref.url) for ref in read_records(self.path))

    def list_videos(self, limit: int) -> list[VideoRef]:
        return read_records(self.path)[:limit]

    def fetch(self, ref: VideoRef, dest_dir: Path) -> FetchedVideo:
        local = not is_url(ref.url)
        fetched = LocalFolderSource(Path(ref.url).parent).fetch(ref, dest_dir) if local else self.fetcher.fetch(
            ref, dest_dir)
        fetched.metadata["record_json"] = json.dumps(ref.info.get(RECORD, {}), sort_keys=True, default=str)
        return fetched
