"""Map a yt-dlp info dict (TikTok's extractor, or any other) to a ``videos`` table row.

yt-dlp's TikTok extractors produce an info dict with the post's id, description,
author (``uploader`` is the @handle, ``channel`` the display name), ``timestamp``,
``duration``, the counts, the sound (``track``, ``artists``) and a ``formats`` list.
After format selection the chosen format's fields (``format_id``, ``format_note``,
``width``, ``height``, ``fps``) are copied to the top level, and a merged download
lists its parts in ``requested_formats``. Everything here is a pure function of
that dict so it can be tested on recorded info dicts without a network.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

# A TikTok hashtag: '#' then letters/digits/underscores in any script (TikTok's own rule).
_HASHTAG = re.compile(r"#(\w+)")


def parse_hashtags(text: str | None) -> list[str]:
    """The ``#tags`` of ``text``, lower-cased (TikTok tags are case-insensitive), first occurrence order."""
    return list(dict.fromkeys(tag.lower() for tag in _HASHTAG.findall(text or "")))


def is_watermarked_format(fmt: dict[str, Any]) -> bool:
    """True for the formats yt-dlp marks as carrying TikTok's watermark.

    The web extractor names it ``download`` with ``format_note`` "watermarked"; the app
    extractor calls it ``download_addr`` with the note "Download video, watermarked"
    (its watermark-free twin has the note "Download video"). Both get preference -2.
    """
    note = (fmt.get("format_note") or "").lower()
    return "watermarked" in note or fmt.get("format_id") == "download"


def selected_formats(info: dict[str, Any]) -> list[dict[str, Any]]:
    """The format(s) yt-dlp chose for ``info``: the parts of a merge, or the single one.

    An info dict that went through format selection carries the chosen format's fields
    at the top level; a raw extractor result (no ``format_id`` at the top) has none.
    """
    if info.get("requested_formats"):
        return list(info["requested_formats"])
    return [info] if info.get("format_id") else []


def _first(info: dict[str, Any], *keys: str) -> Any:
    return next((info[k] for k in keys if info.get(k) not in (None, "")), None)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def metadata_from_info(info: dict[str, Any]) -> dict[str, Any]:
    """A ``videos`` row from a yt-dlp info dict; unknown values are None.

    Columns and types: video_id, url, author, author_id, description (str | None);
    hashtags (list[str], possibly empty: the description's ``#tags`` then any
    ``tags`` yt-dlp gives, lower-cased and de-duplicated); sound_id, sound_title,
    sound_author (str | None; yt-dlp's TikTok extractors expose no music id, so
    sound_id is only set when the info dict has ``track_id``); duration_s, fps
    (float | None); width, height (int | None); create_time (timezone-aware UTC
    datetime | None, from ``timestamp``); view_count, like_count, comment_count,
    share_count (int | None; share_count is yt-dlp's ``repost_count``); format_id
    (str | None: the chosen format, ``a+b`` for a merge); watermarked (bool: any
    chosen part is a watermarked format).
    """
    chosen = selected_formats(info)
    video_part = next((f for f in chosen if f.get("vcodec") != "none"), chosen[0] if chosen else info)
    artists = info.get("artists")
    sound_author = ", ".join(artists) if artists else _first(info, "artist", "creator")
    timestamp = info.get("timestamp")
    tags = parse_hashtags(info.get("description")) + [str(t).lower().lstrip("#") for t in info.get("tags") or []]
    return {
        "video_id": str(info["id"]),
        "url": _first(info, "webpage_url", "original_url", "url"),
        "author": _first(info, "uploader", "channel", "creator"),
        "author_id": _first(info, "uploader_id", "channel_id"),
        "description": info.get("description"),
        "hashtags": list(dict.fromkeys(t for t in tags if t)),
        "sound_id": None if info.get("track_id") is None else str(info["track_id"]),
        "sound_title": info.get("track"),
        "sound_author": sound_author,
        "duration_s": _float(info.get("duration")),
        "width": _int(_first(video_part, "width") or info.get("width")),
        "height": _int(_first(video_part, "height") or info.get("height")),
        "fps": _float(_first(video_part, "fps") or info.get("fps")),
        "create_time": None if timestamp is None else datetime.fromtimestamp(timestamp, tz=timezone.utc),
        "view_count": _int(info.get("view_count")),
        "like_count": _int(info.get("like_count")),
        "comment_count": _int(info.get("comment_count")),
        "share_count": _int(info.get("repost_count")),
        "format_id": "+".join(f["format_id"] for f in chosen) if chosen else None,
        "watermarked": any(is_watermarked_format(f) for f in chosen),
    }
