"""yt-dlp run for real against a loopback HTTP server serving real video files.

TikTok cannot be reached from here, so the yt-dlp source is exercised through
yt-dlp's generic extractor, which downloads direct video URLs: the same download,
retry, timeout and clean-up paths a TikTok download takes. TikTok-specific messages
(private, geo-blocked, IP blocked) are checked on yt-dlp's own exception types.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from yt_dlp.networking.common import Response
from yt_dlp.networking.exceptions import HTTPError, TransportError
from yt_dlp.utils import DownloadError, ExtractorError, GeoRestrictedError

from support.video_server import Route, ServedVideos, serve_videos
from tiktokfer_assets.media.probe import probe
from tiktokfer_assets.sources.base import FetchError, VideoRef
from tiktokfer_assets.sources.download_pool import Progress, fetch_all
from tiktokfer_assets.sources.records import RecordsSource
from tiktokfer_assets.sources.url_list import UrlListSource, read_url_list
from tiktokfer_assets.sources.ytdlp import (
    YtDlpSource,
    available_impersonate_targets,
    classify_error,
    tiktok_video_id,
    tiktok_video_url,
    video_id_from_url,
)

TIKTOK_URL = "https://www.tiktok.com/@maya.makes.faces/video/7290857393721888046"


def _make_video(path: Path, seconds: float, size: str) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=15:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:v", "libx264", "-preset", "ultrafast",
         "-c:a", "aac", "-shortest", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Two small real videos: 2.5 s portrait 144x256 and 1.5 s landscape 160x120."""
    tmp = tmp_path_factory.mktemp("clips")
    return {
        "portrait": _make_video(tmp / "portrait.mp4", 2.5, "144x256").read_bytes(),
        "landscape": _make_video(tmp / "landscape.mp4", 1.5, "160x120").read_bytes(),
    }


@pytest.fixture
def server(clips: dict[str, bytes]):
    routes = {
        "/good.mp4": Route(clips["portrait"]),
        "/other.mp4": Route(clips["landscape"]),
        "/flaky.mp4": Route(clips["landscape"], fail_with=(503, 503)),
        "/slow.mp4": Route(clips["portrait"], delay_s=30.0),
        "/text.mp4": Route(b"this is a web page, not a video\n" * 20),
        "/cut.mp4": Route(clips["portrait"], truncate_at=4000),
    }
    with serve_videos(routes) as served:
        yield served


def _fetch_all(source, urls: list[str], dest: Path, **kwargs):
    """fetch_all with recorded (not slept) backoff; returns the outcomes and the delays asked for."""
    delays: list[float] = []
    refs = [VideoRef(video_id_from_url(u), u) for u in urls]
    kwargs.setdefault("backoff_s", 0.01)
    return fetch_all(source, refs, dest, sleep=delays.append, **kwargs), delays


def test_good_video_is_downloaded_with_its_metadata(server: ServedVideos, tmp_path: Path) -> None:
    fetched = YtDlpSource([]).fetch(VideoRef("good", server.url("good.mp4")), tmp_path)
    assert fetched.path == tmp_path / "good.mp4"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.mp4"]  # no .part, no work folder
    assert probe(fetched.path).duration_s == pytest.approx(2.5, abs=0.1)
    meta = fetched.metadata
    assert meta["video_id"] == "good" and meta["url"] == server.url("good.mp4")
    assert meta["duration_s"] == pytest.approx(2.5, abs=0.1)
    assert (meta["width"], meta["height"], meta["fps"]) == (144, 256, 15.0)
    assert fetched.format_id == meta["format_id"] == "mp4" and fetched.watermarked is False
    assert json.loads(fetched.info_json)["id"] == "good"


def test_missing_video_fails_at_once_with_ytdlp_message(server: ServedVideos, tmp_path: Path) -> None:
    [outcome], delays = _fetch_all(YtDlpSource([]), [server.url("missing.mp4")], tmp_path)
    assert outcome.fetched is None and outcome.attempts == 1 and delays == []
    assert "HTTP 404" in outcome.error and "Unable to download webpage: HTTP Error 404" in outcome.error
    assert list(tmp_path.iterdir()) == []


def test_two_503s_then_success_is_retried_and_stored(server: ServedVideos, tmp_path: Path) -> None:
    [outcome], delays = _fetch_all(YtDlpSource([]), [server.url("flaky.mp4")], tmp_path, backoff_s=0.2)
    assert outcome.error is None and outcome.attempts == 3
    assert 0.1 <= delays[0] <= 0.2 and 0.2 <= delays[1] <= 0.4  # exponential with jitter
    assert probe(outcome.fetched.path).duration_s == pytest.approx(1.5, abs=0.1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flaky.mp4"]


def test_slow_response_times_out_and_is_retried_as_transient(server: ServedVideos, tmp_path: Path) -> None:
    source = YtDlpSource([], socket_timeout_s=0.3)
    [outcome], delays = _fetch_all(source, [server.url("slow.mp4")], tmp_path, max_attempts=2)
    assert outcome.fetched is None and outcome.attempts == 2 and len(delays) == 1
    assert "timed out" in outcome.error and "gave up after 2 attempts" in outcome.error
    assert server.requests["/slow.mp4"] == 2
    assert list(tmp_path.iterdir()) == []


def test_text_served_as_video_is_a_permanent_failure(server: ServedVideos, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="not a readable video") as raised:
        YtDlpSource([]).fetch(VideoRef("text", server.url("text.mp4")), tmp_path)
    assert raised.value.transient is False
    assert list(tmp_path.iterdir()) == []


def test_dropped_connection_is_transient_and_leaves_no_partial_file(server: ServedVideos, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="more expected") as raised:
        YtDlpSource([]).fetch(VideoRef("cut", server.url("cut.mp4")), tmp_path)
    assert raised.value.transient is True
    assert list(tmp_path.iterdir()) == []


def test_batch_then_rerun_fetches_only_what_is_missing(server: ServedVideos, tmp_path: Path) -> None:
    urls = [server.url(p) for p in ("good.mp4", "missing.mp4", "other.mp4", "text.mp4")]
    server.routes["/flaky.mp4"].fail_with = (503,) * 4
    urls.insert(2, server.url("flaky.mp4"))
    progress: list[Progress] = []
    outcomes, _ = _fetch_all(YtDlpSource([]), urls, tmp_path, workers=3, max_attempts=2,
                             on_progress=progress.append, progress_every=2)
    assert [o.ref.url for o in outcomes] == urls
    assert [o.error is None for o in outcomes] == [True, False, False, True, False]
    assert progress[-1] == Progress(done=2, failed=3, skipped=0, total=5)
    assert [p.done + p.failed for p in progress] == [2, 4, 5]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.mp4", "other.mp4"]

    # The host recovers; a re-run skips what is stored and fetches the rest.
    server.routes["/flaky.mp4"].fail_with = ()
    before = dict(server.requests)
    outcomes, _ = _fetch_all(YtDlpSource([]), urls, tmp_path, max_attempts=2,
                             skip=lambda ref: (tmp_path / f"{ref.video_id}.mp4").is_file())
    assert [o.skipped for o in outcomes] == [True, False, False, True, False]
    assert outcomes[2].error is None and outcomes[2].attempts == 1
    assert server.requests["/good.mp4"] == before["/good.mp4"]
    assert server.requests["/other.mp4"] == before["/other.mp4"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flaky.mp4", "good.mp4", "other.mp4"]


def test_list_videos_expands_lists_up_to_the_limit(server: ServedVideos) -> None:
    items = "".join(f"<item><title>{n}</title><link>{server.url(n + '.mp4')}</link></item>"
                    for n in ("good", "other", "flaky"))
    feed = f'<?xml version="1.0"?><rss version="2.0"><channel><title>feed</title>{items}</channel></rss>'
    server.routes["/feed.xml"] = Route(feed.encode(), content_type="application/rss+xml")
    source = YtDlpSource([TIKTOK_URL, server.url("feed.xml"), server.url("gone.mp4"), TIKTOK_URL])

    refs = source.list_videos(10)
    assert [r.video_id for r in refs] == ["7290857393721888046", "good", "other", "flaky", "gone"]
    assert refs[0].info == {}  # a TikTok video URL is listed without any request
    assert refs[1].url == server.url("good.mp4") and server.requests["/good.mp4"] == 0  # flat: not resolved
    assert "HTTP Error 404" in refs[4].info["listing_error"]

    assert [r.video_id for r in source.list_videos(3)] == ["7290857393721888046", "good", "other"]
    assert server.requests["/feed.xml"] == 2


def test_url_list_files_are_read_and_fetched_through_ytdlp(server: ServedVideos, tmp_path: Path) -> None:
    txt = tmp_path / "videos.txt"
    txt.write_text(f"# exported by hand\n{server.url('good.mp4')}\n\n7290857393721888046  # an id\n"
                   f"{TIKTOK_URL}\n{server.url('other.mp4')}#t=3\n")
    refs = read_url_list(txt)
    assert [(r.video_id, r.url) for r in refs] == [
        ("good", server.url("good.mp4")),
        ("7290857393721888046", "https://www.tiktok.com/@_/video/7290857393721888046"),
        ("other", server.url("other.mp4") + "#t=3"),
    ]

    by_url = tmp_path / "research_api.csv"
    by_url.write_text(f"video_id,URL,like_count\n1,{server.url('good.mp4')},5\n2,{server.url('other.mp4')},7\n")
    assert [r.video_id for r in read_url_list(by_url)] == ["good", "other"]  # 'url' wins over 'video_id'
    by_id = tmp_path / "ids.csv"
    by_id.write_text("id,region\n6571420881249013002,US\n6730562817366252806,DE\n")
    assert [r.url for r in read_url_list(by_id)] == [tiktok_video_url("6571420881249013002"),
                                                     tiktok_video_url("6730562817366252806")]

    source = UrlListSource(by_url, YtDlpSource([], socket_timeout_s=5.0))
    refs = source.list_videos(1)
    fetched = source.fetch(refs[0], tmp_path / "out")
    assert fetched.metadata["video_id"] == "good"
    assert probe(fetched.path).duration_s == pytest.approx(2.5, abs=0.1)


def test_bad_url_lists_are_refused_and_bad_entries_are_failures(tmp_path: Path) -> None:
    path = tmp_path / "videos.csv"
    path.write_text("name,likes\nx,1\n")
    with pytest.raises(ValueError, match="needs a 'url', 'video_id' or 'id' column") as raised:
        read_url_list(path)
    assert "likes" not in str(raised.value)  # the file's first line is not echoed
    path.write_text("id\n12ab\n")
    [ref] = read_url_list(path)
    assert ref.video_id == "line-2"
    assert "videos.csv line 2 is neither a URL nor a TikTok video id" in ref.info["invalid"]


def test_cookies_are_sent_and_the_users_file_is_left_alone(server: ServedVideos, tmp_path: Path) -> None:
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsessionid\tabc123\n")
    before = cookies.read_bytes()
    YtDlpSource([], cookies_file=cookies).fetch(VideoRef("good", server.url("good.mp4")), tmp_path / "out")
    assert "sessionid=abc123" in server.headers["/good.mp4"].get("Cookie", "")
    assert cookies.read_bytes() == before


def test_impersonation_without_curl_cffi_is_refused_clearly() -> None:
    if available_impersonate_targets():
        pytest.skip("curl_cffi is installed here, so impersonation is available")
    with pytest.raises(ValueError, match="curl_cffi"):
        YtDlpSource([TIKTOK_URL], impersonate="chrome")


def _http_error(status: int) -> HTTPError:
    return HTTPError(Response(io.BytesIO(b""), "https://www.tiktok.com/x", {}, status=status))


def _as_ytdlp_raises(error: Exception) -> DownloadError:
    """``error`` wrapped the way YoutubeDL reports it: an ExtractorError inside a DownloadError."""
    try:
        try:
            raise error
        except Exception as cause:
            raise ExtractorError(f"[TikTok] 7290857393721888046: {cause}", cause=cause, expected=True)
    except ExtractorError as extractor_error:
        return DownloadError(f"ERROR: {extractor_error.msg}", sys.exc_info())


@pytest.mark.parametrize("error, transient", [
    (_as_ytdlp_raises(_http_error(429)), True),
    (_as_ytdlp_raises(_http_error(502)), True),
    (_as_ytdlp_raises(_http_error(403)), False),
    (_as_ytdlp_raises(TransportError("Read timed out.", cause=TimeoutError())), True),
    (DownloadError("ERROR: [TikTok] 1: Your IP address is blocked from accessing this post"), False),
    (DownloadError("ERROR: [TikTok] 1: You do not have permission to view this post. Log into an account"), False),
    (DownloadError("ERROR: [TikTok] 1: Video not available, status code 10204"), False),
    (_as_ytdlp_raises(GeoRestrictedError("This video is not available from your location")), False),
    (DownloadError("ERROR: Unsupported URL: https://example.com/page"), False),
])
def test_errors_are_classified(error: Exception, transient: bool) -> None:
    classified = classify_error(error, "https://www.tiktok.com/@_/video/1")
    assert classified.transient is transient
    assert str(error).removeprefix("ERROR: ") in str(classified)


def test_video_ids_from_urls() -> None:
    assert tiktok_video_id(TIKTOK_URL + "?is_from_webapp=1") == "7290857393721888046"
    assert tiktok_video_id("https://www.tiktok.com/@maya.makes.faces") is None
    assert video_id_from_url("https://vm.tiktok.com/ZMe8Kq3Wp/") == "ZMe8Kq3Wp"
    assert video_id_from_url("http://127.0.0.1:8000/clips/a%20b.mp4") == "a_b"
    with pytest.raises(ValueError):
        tiktok_video_url("https://www.tiktok.com/")


# -- a host that trickles: the per-video deadline, the size limit, a prompt stop ------------------------------


class _Terminated(BaseException):
    """What Dagster raises in a run's main thread on SIGTERM (its DagsterExecutionInterruptedError)."""


def _fetch_processes() -> list:
    return [p for p in multiprocessing.active_children() if p.name.startswith("fetch-")]


def test_a_trickling_host_is_cut_at_the_deadline_and_a_large_file_at_the_size_limit(clips, tmp_path: Path) -> None:
    routes = {"/trickle.mp4": Route(clips["portrait"], trickle_s=0.5), "/big.mp4": Route(clips["landscape"])}
    with serve_videos(routes) as served:
        source = YtDlpSource([], max_bytes=len(clips["landscape"]) - 1)
        [trickle] = fetch_all(source, [VideoRef("trickle", served.url("/trickle.mp4"))], tmp_path, deadline_s=1.5,
                              max_attempts=2, backoff_s=0.01)
        [big] = fetch_all(source, [VideoRef("big", served.url("/big.mp4"))], tmp_path, deadline_s=600)
    assert trickle.fetched is None and trickle.attempts == 1  # not retried: another try would trickle too
    assert "not downloaded within the 1.5 s deadline" in trickle.error
    assert big.fetched is None and big.attempts == 1 and "bytes allowed (max_video_bytes)" in big.error
    assert list(tmp_path.iterdir()) == [] and _fetch_processes() == []


def test_sigterm_stops_a_download_at_once(clips, tmp_path: Path) -> None:
    route = Route(clips["portrait"], trickle_s=0.5)  # minutes to send: the deadline is far off
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(_Terminated()))
    try:
        with serve_videos({"/trickle.mp4": route}) as served:
            threading.Thread(target=lambda: route.started.wait() and os.kill(os.getpid(), signal.SIGTERM)).start()
            with pytest.raises(_Terminated):
                fetch_all(YtDlpSource([]), [VideoRef("trickle", served.url("/trickle.mp4"))], tmp_path, deadline_s=600)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert _fetch_processes() == [] and list(tmp_path.iterdir()) == []


def test_records_with_a_url_are_downloaded_through_ytdlp_with_their_record(server: ServedVideos,
                                                                          tmp_path: Path) -> None:
    records = tmp_path / "contents.jsonl"
    records.write_text(json.dumps({"content_id": "7301", "video_url": server.url("good.mp4"), "likes": 5}) + "\n")
    source = RecordsSource(records, YtDlpSource([], socket_timeout_s=5.0))
    assert not source.local  # a URL: the download pool runs it in its per-video child process
    [ref] = source.list_videos(10)
    fetched = source.fetch(ref, tmp_path / "out")
    assert probe(fetched.path).duration_s == pytest.approx(2.5, abs=0.1)
    assert json.loads(fetched.metadata["record_json"]) == {
        "content_id": "7301", "video_url": server.url("good.mp4"), "likes": 5}
