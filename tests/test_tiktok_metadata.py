"""Recorded TikTok info dicts (yt-dlp's TikTok extractor output, written by hand) to ``videos`` rows.

Fixtures in tests/fixtures/tiktok_info:
* web_no_watermark.json: web extractor, watermark-free bytevc1/h264 formats plus the
  watermarked ``download`` one;
* web_watermark_only.json: an old post whose only video format is the watermarked one;
* app_short_link_missing_counts.json: app-API formats (``download_addr`` watermarked),
  reached through a vm.tiktok.com short link, no counts and no sound author.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yt_dlp

from tiktokfer_assets.sources.tiktok_metadata import is_watermarked_format, metadata_from_info, parse_hashtags
from tiktokfer_assets.sources.ytdlp import YtDlpSource

FIXTURES = Path(__file__).parent / "fixtures" / "tiktok_info"


def _info(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def _as_extracted(info: dict) -> dict:
    """The info dict as the extractor returned it: without the fields of the format yt-dlp then chose."""
    format_keys = set().union(*(f.keys() for f in info["formats"]))
    return {k: v for k, v in info.items() if k not in format_keys}


def _select(info: dict, tmp_path: Path) -> dict:
    """Run yt-dlp's real format selection, with the yt-dlp source's options, on an extracted info dict."""
    with yt_dlp.YoutubeDL(YtDlpSource([]).ydl_params(tmp_path)) as ydl:
        return ydl.process_ie_result(copy.deepcopy(_as_extracted(info)), download=False)


def test_watermark_free_video_maps_to_a_full_row() -> None:
    assert metadata_from_info(_info("web_no_watermark")) == {
        "video_id": "7290857393721888046",
        "url": "https://www.tiktok.com/@maya.makes.faces/video/7290857393721888046",
        "author": "maya.makes.faces",
        "author_id": "6812204419512976390",
        "description": "the emoji challenge but i can't stop laughing 😭 #emojichallenge #fyp #Emoji #foryoupage",
        "hashtags": ["emojichallenge", "fyp", "emoji", "foryoupage"],
        "sound_id": None,
        "sound_title": "original sound - emojichallengeog",
        "sound_author": "emoji challenge OG",
        "duration_s": 16.0,
        "width": 1080,
        "height": 1920,
        "fps": None,
        "create_time": datetime(2023, 10, 19, 16, 23, 31, tzinfo=timezone.utc),
        "view_count": 1843200,
        "like_count": 212400,
        "comment_count": 1377,
        "share_count": 3188,
        "format_id": "bytevc1_1080p_1453174",
        "watermarked": False,
    }


def test_watermark_only_video_is_marked_for_masking() -> None:
    row = metadata_from_info(_info("web_watermark_only"))
    assert row["format_id"] == "download" and row["watermarked"] is True
    assert row["sound_author"] == "Tik Toker, emoji.music" and row["sound_title"] == "Emoji Challenge"
    assert row["create_time"] == datetime(2018, 6, 25, 14, 32, 4, tzinfo=timezone.utc)
    assert (row["width"], row["height"]) == (None, None)  # the download format does not say; ffprobe will


def test_missing_counts_stay_unknown() -> None:
    row = metadata_from_info(_info("app_short_link_missing_counts"))
    assert {k: row[k] for k in ("view_count", "like_count", "comment_count", "share_count")} == dict.fromkeys(
        ("view_count", "like_count", "comment_count", "share_count"))
    assert row["url"] == "https://www.tiktok.com/@noor.h/video/6730562817366252806"  # the short link resolved
    assert row["hashtags"] == ["facechallenge", "défi", "表情挑战"]
    assert row["sound_author"] is None and row["author"] == "noor.h"
    assert (row["format_id"], row["watermarked"], row["fps"], row["width"]) == ("normal_540_0", False, 30.0, 576)


@pytest.mark.parametrize("name, chosen, watermarked", [
    ("web_no_watermark", "bytevc1_1080p_1453174", False),
    ("web_watermark_only", "download", True),
    ("app_short_link_missing_counts", "normal_540_0", False),
])
def test_source_format_selection_avoids_the_watermark(name: str, chosen: str, watermarked: bool,
                                                      tmp_path: Path) -> None:
    row = metadata_from_info(_select(_info(name), tmp_path))
    assert (row["format_id"], row["watermarked"]) == (chosen, watermarked)


def test_watermarked_format_is_avoided_even_when_it_ranks_best(tmp_path: Path) -> None:
    info = _info("web_no_watermark")
    for fmt in info["formats"]:
        if fmt["format_id"] == "download":
            fmt.update(width=1080, height=1920, quality=9, preference=10)  # yt-dlp alone would now take it
    assert metadata_from_info(_select(info, tmp_path))["format_id"] == "bytevc1_1080p_1453174"


def test_merged_format_reports_its_parts() -> None:
    info = {"id": "1", "format_id": "bytevc1_1080p_1+audio", "requested_formats": [
        {"format_id": "bytevc1_1080p_1", "vcodec": "h265", "acodec": "none", "width": 1080, "height": 1920},
        {"format_id": "audio", "vcodec": "none", "acodec": "mp3"}]}
    row = metadata_from_info(info)
    assert (row["format_id"], row["width"], row["watermarked"], row["hashtags"]) == (
        "bytevc1_1080p_1+audio", 1080, False, [])


def test_watermark_markers() -> None:
    assert is_watermarked_format({"format_id": "download", "format_note": "watermarked"})
    assert is_watermarked_format({"format_id": "download_addr", "format_note": "Download video, watermarked"})
    assert not is_watermarked_format({"format_id": "download_addr", "format_note": "Download video"})
    assert not is_watermarked_format({"format_id": "h264_540p_1213464", "format_note": None})


def test_hashtags_are_lower_cased_unique_and_unicode() -> None:
    tags = parse_hashtags("#Emoji #emoji #FYP no#tag? #表情挑战! #défi_2 #")
    assert tags == ["emoji", "fyp", "tag", "表情挑战", "défi_2"]
    assert parse_hashtags(None) == []
