"""Videos from any URL yt-dlp handles: TikTok videos, short links, user pages, collections.

Listing expands each URL with yt-dlp's Python API (``extract_flat="in_playlist"``,
so a user page or collection costs one request per page of entries rather than one
per video, and ``playlist_items`` stops at the limit). Canonical TikTok video URLs
are turned into refs without any request. Each video is then downloaded on its own
by :meth:`YtDlpSource.fetch`, preferring a format without TikTok's watermark.

yt-dlp's own retries are switched off: retrying with backoff is the download pool's
job (:mod:`tiktokfer_assets.sources.download_pool`), and two nested retry loops
would multiply the waiting. Errors are classified as transient (worth retrying:
HTTP 429/5xx, timeouts, dropped connections) or permanent (private, removed,
geo-blocked, IP blocked, 404, unsupported URL, not a video) so the pool knows which
to retry.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import shutil
import socket
import tempfile
import urllib.parse
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yt_dlp
from yt_dlp.extractor import gen_extractor_classes
from yt_dlp.networking.exceptions import CertificateVerifyError, HTTPError, TransportError
from yt_dlp.networking.impersonate import ImpersonateTarget
from yt_dlp.utils import GeoRestrictedError, UnsupportedError, YoutubeDLError, url_basename

from tiktokfer_assets.media.probe import ProbeError, probe
from tiktokfer_assets.sources.base import LISTING_ERROR, FetchedVideo, FetchError, VideoRef
from tiktokfer_assets.sources.tiktok_metadata import metadata_from_info

log = logging.getLogger(__name__)

# Best single file that is not TikTok's watermarked format ("download", or a note
# saying "watermarked"; the "?" keeps formats without any note); when that is all
# there is, take it anyway (the videos asset masks the watermark then).
NO_WATERMARK_FORMAT = "b[format_id!=download][format_note!*=?watermarked]/b"

_TIKTOK_VIDEO_URL = re.compile(r"https?://(?:www\.|m\.)?tiktokv?\.com/(?:@[\w.-]*/video|embed(?:/v2)?|share/video)/(\d+)")
_TIKTOK_ID = re.compile(r"\d{6,25}")

# yt-dlp messages that mean the video will not become available by retrying.
_PERMANENT_MESSAGES = re.compile(
    r"private|permission to view|log ?in|not available|unavailable in your|removed|deleted|"
    r"no longer|does not exist|geo.?restrict|your country|ip address is blocked|unsupported url|"
    r"no video formats|is not a valid url|copyright",
    re.IGNORECASE,
)
# Messages of transient trouble whose exception chain was flattened into text.
_TRANSIENT_MESSAGES = re.compile(
    r"timed out|timeout|too many requests|http error (?:429|5\d\d)|connection (?:reset|refused|aborted)|"
    r"remote end closed|temporarily|try again later|incomplete ?read|did not get any data|"
    r"bytes read, \d+ more expected|downloaded \d+ bytes, expected",
    re.IGNORECASE,
)
_TRANSIENT_HTTP_STATUS = {408, 425, 429}


def tiktok_video_id(url: str) -> str | None:
    """The numeric post id of a canonical TikTok video URL, or None for any other URL."""
    match = _TIKTOK_VIDEO_URL.match(url.strip())
    return match.group(1) if match else None


def tiktok_video_url(video_id: str) -> str:
    """The canonical URL of TikTok post ``video_id`` (TikTok redirects the ``@_`` handle)."""
    if not _TIKTOK_ID.fullmatch(video_id):
        raise ValueError(f"{video_id!r} is not a TikTok video id (6-25 digits)")
    return f"https://www.tiktok.com/@_/video/{video_id}"


def safe_video_id(raw: str) -> str:
    """``raw`` made safe for file names and object keys (case kept: some sites' ids are case-sensitive)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", raw).strip("_")[:128] or "video"


def video_id_from_url(url: str) -> str:
    """A video id found in ``url`` alone, without a request.

    TikTok video URLs give their post id; a URL another yt-dlp extractor recognises
    gives that extractor's id (a short link's code, a YouTube id, ...); anything else
    (a direct file URL) gives its file name without extension, as yt-dlp's generic
    extractor does.
    """
    if vid := tiktok_video_id(url):
        return vid
    for ie in gen_extractor_classes():
        if ie.ie_key() != "Generic" and ie.suitable(url) and (temp := ie.get_temp_id(url)):
            return safe_video_id(str(temp))
    return safe_video_id(Path(urllib.parse.unquote(url_basename(url))).stem)


def classify_error(exc: BaseException, url: str) -> FetchError:
    """A :class:`FetchError` for a yt-dlp failure, transient when retrying may help.

    yt-dlp wraps the real cause (an ``HTTPError`` with its status, a
    ``TransportError`` for timeouts and resets) in ``ExtractorError``/``DownloadError``;
    the chain is walked to find it. Messages of known permanent conditions (private,
    removed, geo-blocked, IP blocked, unsupported) win over the transport details;
    unknown errors are permanent, so a broken extractor is not retried for nothing.
    """
    chain: list[BaseException] = []
    pending: deque[BaseException | None] = deque([exc])
    while pending:
        current = pending.popleft()
        if current is None or any(current is seen for seen in chain):
            continue
        chain.append(current)
        exc_info = getattr(current, "exc_info", None)
        pending.extend([exc_info[1] if exc_info else None, getattr(current, "cause", None),
                        current.__cause__, current.__context__])
    message = _clean_message(str(exc))
    text = " | ".join(str(e) for e in chain)

    def fail(transient: bool, why: str) -> FetchError:
        return FetchError(f"{url}: {why}: {message}", transient=transient)

    if any(isinstance(e, (GeoRestrictedError, UnsupportedError)) for e in chain):
        return fail(False, "unavailable")
    for e in chain:
        if isinstance(e, HTTPError):
            transient = e.status in _TRANSIENT_HTTP_STATUS or e.status >= 500
            return fail(transient, f"HTTP {e.status}")
    if _PERMANENT_MESSAGES.search(text):
        return fail(False, "unavailable")
    if any(isinstance(e, CertificateVerifyError) for e in chain):
        return fail(False, "TLS certificate rejected")
    if any(isinstance(e, (TransportError, TimeoutError, socket.timeout, ConnectionError)) for e in chain):
        return fail(True, "network error")
    if _TRANSIENT_MESSAGES.search(text):
        return fail(True, "network error")
    return fail(False, "failed")


# What yt-dlp's info keeps that is a credential: each format's cookies, request headers that authenticate,
# and the signed query strings of media URLs (TikTok's CDN URLs carry tokens that play the video for anyone).
_CREDENTIAL_KEYS = {"cookies"}
_CREDENTIAL_HEADERS = {"cookie", "authorization", "proxy-authorization", "x-api-key"}
_SIGNED_URL_KEYS = {"url", "manifest_url", "fragment_base_url"}


def without_credentials(value: Any) -> Any:
    """yt-dlp's info (or any part of it) without cookies, authenticating headers and media URLs' query strings.

    The page URLs (``webpage_url``, ``original_url``) are kept: they are what the challenge lists.
    """
    if isinstance(value, list):
        return [without_credentials(item) for item in value]
    if not isinstance(value, dict):
        return value
    clean = {}
    for key, item in value.items():
        if key in _CREDENTIAL_KEYS:
            continue
        if key == "http_headers" and isinstance(item, dict):
            item = {name: v for name, v in item.items() if name.lower() not in _CREDENTIAL_HEADERS}
        elif key in _SIGNED_URL_KEYS and isinstance(item, str):
            item = item.split("?", 1)[0]
        else:
            item = without_credentials(item)
        clean[key] = item
    return clean


def _clean_message(message: str) -> str:
    """yt-dlp's message without the ``ERROR: `` prefix and the colour codes."""
    message = re.sub(r"\x1b\[[0-9;]*m", "", message).strip()
    return message.removeprefix("ERROR:").strip()


class _KeptMessages:
    """A yt-dlp logger that prints nothing and keeps what it was told.

    yt-dlp sends its info lines to ``debug`` when a logger is set; they go to this
    module's Python logger at debug level. Warnings go to it as warnings and are kept,
    so a failure can say what yt-dlp warned about before it (a skipped format, a
    login hint). Errors are not logged here: they come back as exceptions.
    """

    def __init__(self, context: str, keep: int = 20):
        self.context = context
        self.warnings: deque[str] = deque(maxlen=keep)

    def debug(self, msg: str) -> None:
        log.debug("%s: %s", self.context, msg)

    info = debug

    def warning(self, msg: str) -> None:
        msg = _clean_message(msg).removeprefix("WARNING:").strip()
        self.warnings.append(msg)
        log.warning("%s: %s", self.context, msg)

    def error(self, msg: str) -> None:
        log.debug("%s: %s", self.context, msg)


def _with_warnings(error: FetchError, logger: _KeptMessages) -> FetchError:
    """``error`` with yt-dlp's warnings of the same request appended to its message."""
    if not logger.warnings:
        return error
    return FetchError(f"{error} [yt-dlp warnings: {'; '.join(logger.warnings)}]", transient=error.transient)


@functools.cache
def _default_extractors() -> tuple[type, ...]:
    """yt-dlp's default extractor classes, in its order, worked out once per process.

    A plain ``YoutubeDL()`` rebuilds this list of ~1,800 extractors (a quadratic
    de-duplication in pure Python, tens of milliseconds holding the GIL); doing that
    for every video would serialise the download threads on it.
    """
    with yt_dlp.YoutubeDL({"quiet": True, "logger": _KeptMessages("extractors")}) as ydl:
        return tuple(ie if isinstance(ie, type) else type(ie) for ie in ydl._ies.values())


def _youtube_dl(params: dict[str, Any]) -> yt_dlp.YoutubeDL:
    """A ``YoutubeDL`` with ``params`` and the default extractors, without rebuilding their list."""
    ydl = yt_dlp.YoutubeDL(params, auto_init=False)
    for ie in _default_extractors():
        ydl.add_info_extractor(ie)
    return ydl


def available_impersonate_targets() -> list[str]:
    """Browser targets yt-dlp can impersonate here (empty unless curl_cffi is installed)."""
    with yt_dlp.YoutubeDL({"quiet": True, "logger": _KeptMessages("impersonate")}, auto_init=False) as ydl:
        return [str(target) for target, _handler in ydl._get_available_impersonate_targets()]


@dataclass(frozen=True)
class YtDlpSource:
    """Videos behind ``urls``, listed and downloaded with yt-dlp.

    ``cookies_file``: a Netscape cookies.txt (TikTok needs one for some posts; it is
    copied per request, so the user's file is never rewritten by concurrent
    downloads). ``sleep_interval_s``: pause between requests and before each
    download. ``proxy``: a proxy URL for every request. ``impersonate``: a browser
    target such as ``"chrome"`` (needs curl_cffi; refused with the installed targets
    when unavailable). ``socket_timeout_s``: per-request network timeout. ``max_bytes``:
    a download that announces or reaches more is stopped as a permanent failure.
    ``format_preference``: a yt-dlp format selector; the default avoids TikTok's
    watermarked format whenever another exists.
    """

    urls: Sequence[str]
    cookies_file: Path | None = None
    sleep_interval_s: float = 0.0
    proxy: str | None = None
    impersonate: str | None = None
    socket_timeout_s: float = 30.0
    max_bytes: int | None = None
    format_preference: str = NO_WATERMARK_FORMAT
    _impersonate_target: ImpersonateTarget | None = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "urls", tuple(u.strip() for u in self.urls if u.strip()))
        if self.cookies_file is not None and not Path(self.cookies_file).is_file():
            raise FileNotFoundError(f"cookies file {self.cookies_file} does not exist")
        if self.impersonate:
            target = ImpersonateTarget.from_str(self.impersonate.lower())
            with yt_dlp.YoutubeDL({"quiet": True, "logger": _KeptMessages("impersonate")}, auto_init=False) as ydl:
                supported = ydl._impersonate_target_available(target)
            if not supported:
                raise ValueError(
                    f"impersonation target {self.impersonate!r} was requested but is not available "
                    f"(available: {', '.join(available_impersonate_targets()) or 'none'}); install curl_cffi "
                    "with `pip install 'yt-dlp[default,curl-cffi]'` or leave impersonate unset")
            object.__setattr__(self, "_impersonate_target", target)

    def ydl_params(self, workdir: Path, logger: _KeptMessages | None = None, **extra: Any) -> dict[str, Any]:
        """The YoutubeDL options of this source, writing into ``workdir`` (``extra`` overrides)."""
        params: dict[str, Any] = {
            "logger": logger or _KeptMessages(str(workdir)),
            "quiet": True,
            "noprogress": True,
            "no_color": True,
            "format": self.format_preference,
            "merge_output_format": "mp4",
            "outtmpl": {"default": str(workdir).replace("%", "%%") + "/video.%(ext)s"},
            "socket_timeout": self.socket_timeout_s,
            "retries": 0,
            "fragment_retries": 0,
            "extractor_retries": 0,
            "noplaylist": True,
            "extract_flat": "in_playlist",
            "cachedir": False,
        }
        if self.max_bytes is not None:
            params["progress_hooks"] = [self._size_limit]
        if self.sleep_interval_s > 0:
            params["sleep_interval_requests"] = self.sleep_interval_s
            params["sleep_interval"] = self.sleep_interval_s
        if self.proxy:
            params["proxy"] = self.proxy
        if self._impersonate_target is not None:
            params["impersonate"] = self._impersonate_target
        if self.cookies_file is not None:
            private = workdir / "cookies.txt"
            shutil.copyfile(self.cookies_file, private)
            params["cookiefile"] = str(private)
        params.update(extra)
        return params

    def _size_limit(self, progress: dict[str, Any]) -> None:
        """yt-dlp progress hook: stop a download past ``max_bytes`` (announced or received)."""
        size = max(progress.get("downloaded_bytes") or 0, progress.get("total_bytes") or 0)
        if size > self.max_bytes:
            raise FetchError(f"{progress.get('info_dict', {}).get('webpage_url', 'the video')}: more than the "
                             f"{self.max_bytes} bytes allowed (max_video_bytes)")

    def list_videos(self, limit: int) -> list[VideoRef]:
        """Up to ``limit`` refs from the URLs, in order, without duplicates.

        A canonical TikTok video URL becomes a ref at once; other URLs are expanded
        with yt-dlp. A URL that cannot be expanded becomes a single ref (its id read
        from the URL) whose ``info["listing_error"]`` holds the reason, so that its
        fetch reports the failure per video instead of one bad URL stopping the list.
        """
        refs: dict[str, VideoRef] = {}
        for url in self.urls:
            if len(refs) >= limit:
                break
            if vid := tiktok_video_id(url):
                refs.setdefault(vid, VideoRef(vid, url))
                continue
            for ref in self._expand(url, limit - len(refs)):
                refs.setdefault(ref.video_id, ref)
        return list(refs.values())[:limit]

    def _expand(self, url: str, limit: int) -> list[VideoRef]:
        logger = _KeptMessages(url)
        with tempfile.TemporaryDirectory(prefix="ytdlp-list-") as tmp:
            try:
                with _youtube_dl(self.ydl_params(Path(tmp), logger, playlist_items=f"1:{limit}")) as ydl:
                    info = ydl.extract_info(url, download=False)
            except YoutubeDLError as exc:
                error = classify_error(exc, url)
                log.warning("could not list %s: %s", url, error)
                return [VideoRef(video_id_from_url(url), url, {LISTING_ERROR: str(error)})]
        if info.get("_type") != "playlist":
            return [VideoRef(safe_video_id(str(info["id"])), info.get("webpage_url") or url)]
        refs = []
        for entry in info.get("entries") or []:
            entry_url = entry.get("url") or entry.get("webpage_url")
            if not entry_url:
                continue
            vid = safe_video_id(str(entry["id"])) if entry.get("id") else video_id_from_url(entry_url)
            refs.append(VideoRef(vid, entry_url, {"playlist": info.get("id"), "ie_key": entry.get("ie_key")}))
        return refs

    def fetch(self, ref: VideoRef, dest_dir: Path) -> FetchedVideo:
        """Download ``ref`` to ``dest_dir/<video_id>.<ext>`` and describe it.

        yt-dlp works in a private temporary folder inside ``dest_dir`` that is removed
        whatever happens, so a failed download leaves no ``.part`` file behind. The
        file is checked with ffprobe (a page served as ``video/mp4`` is refused as a
        permanent failure), and the metadata's duration, size and fps are the file's
        own. ``metadata["video_id"]`` is ``ref.video_id`` (the key the caller
        listed); the platform's own id is in ``info_json``.
        """
        dest_dir = Path(dest_dir)
        dest_dir.mkdir(parents=True, exist_ok=True)
        name = safe_video_id(ref.video_id)
        workdir = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=dest_dir))
        logger = _KeptMessages(ref.url)
        try:
            try:
                with _youtube_dl(self.ydl_params(workdir, logger)) as ydl:
                    info = ydl.extract_info(ref.url, download=True)
                    info_json = json.dumps(without_credentials(ydl.sanitize_info(dict(info), remove_private_keys=True)))
            except YoutubeDLError as exc:
                raise _with_warnings(classify_error(exc, ref.url), logger) from exc
            if info.get("_type") == "playlist":
                listing_error = ref.info.get(LISTING_ERROR)
                raise FetchError(
                    f"{ref.url} is a list of videos, not one video"
                    + (f" (listing it failed: {listing_error})" if listing_error else ""), transient=False)
            downloaded = next((Path(d["filepath"]) for d in info.get("requested_downloads") or []
                               if d.get("filepath")), None)
            if downloaded is None or not downloaded.is_file():
                raise FetchError(f"{ref.url}: yt-dlp reported no downloaded file", transient=False)
            try:
                media = probe(downloaded)
            except ProbeError as exc:
                reason = str(exc).replace(f"{downloaded}: ", "")
                raise FetchError(f"{ref.url}: downloaded file is not a readable video: {reason}",
                                 transient=False) from exc
            dest = dest_dir / f"{name}{downloaded.suffix}"
            downloaded.replace(dest)
        finally:
            shutil.rmtree(workdir)
        metadata = metadata_from_info(info)
        width, height = media.display_size
        metadata.update(video_id=ref.video_id, duration_s=media.duration_s, width=width, height=height, fps=media.fps)
        return FetchedVideo(ref=ref, path=dest, metadata=metadata, watermarked=metadata["watermarked"],
                            format_id=metadata["format_id"], info_json=info_json)
