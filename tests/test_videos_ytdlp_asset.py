"""The videos asset with a yt-dlp source over a loopback server: failures recorded, re-runs fetch only what is
missing."""

from __future__ import annotations

import logging

import polars as pl
import pytest
from dagster import materialize

from support.video_server import Route, serve_videos
from tiktokfer_assets.assets.videos import videos
from tiktokfer_assets.challenges import parse_challenge
from tiktokfer_assets.registry import register_challenge
from tiktokfer_assets.resources.video_source import VideoSourceResource

pytestmark = [pytest.mark.media, pytest.mark.slow]


def test_partial_failure_then_rerun_fetches_only_the_missing(generated, resources, instance):
    files = {f"/{vid}.mp4": (generated.root / "videos" / f"{vid}.mp4").read_bytes() for vid in ("v01", "v02", "v04")}
    routes = {path: Route(body) for path, body in files.items()}
    routes["/v04.mp4"] = Route(files["/v04.mp4"], fail_with=(503,) * 10)  # down for the whole first run
    routes["/gone.mp4"] = Route(b"", fail_with=(404,) * 100)
    routes["/baseline.mp4"] = Route((generated.root / "baseline.mp4").read_bytes())
    resources = {**resources, "video_sources": VideoSourceResource(max_attempts=2, backoff_s=0.01, socket_timeout_s=5)}

    with serve_videos(routes) as server:
        challenge = parse_challenge({
            "name": "remote",
            "source": {
                "kind": "yt_dlp", "urls": [server.url(p) for p in ("/v01.mp4", "/v02.mp4", "/v04.mp4", "/gone.mp4")],
            },
            "baseline": {"url": server.url("/baseline.mp4"), "video_id": "baseline"},
            "prompts": generated.truth["prompts"],
            "max_video_seconds": 20,
        })
        register_challenge(challenge, resources["table_store"], instance)
        assert materialize([videos], partition_key="remote", resources=resources, instance=instance).success
        store = resources["table_store"]
        stored = store.read("videos", ["remote"])
        failures = store.read("video_failures", ["remote"]).sort("video_id")
        assert set(stored.filter(pl.col("role") == "performance")["video_id"]) == {"v01", "v02"}
        assert failures["video_id"].to_list() == ["gone", "v04"]
        gone, v04 = failures.rows(named=True)
        assert gone["attempts"] == 1 and "404" in gone["reason"]  # permanent: not retried
        assert v04["attempts"] == 2 and "503" in v04["reason"]  # transient: retried, then given up
        assert server.requests["/v01.mp4"] >= 1
        first_requests = dict(server.requests)

        routes["/v04.mp4"] = Route(files["/v04.mp4"])  # the host recovers
        assert materialize([videos], partition_key="remote", resources=resources, instance=instance).success
        again = store.read("videos", ["remote"])
        assert set(again.filter(pl.col("role") == "performance")["video_id"]) == {"v01", "v02", "v04"}
        # stored videos are not downloaded again: their rows are kept as they were (listing a
        # generic URL costs yt-dlp one request; downloading it would cost more)
        before = stored.filter(pl.col("video_id").is_in(["v01", "v02", "baseline"])).sort("video_id")
        after = again.filter(pl.col("video_id").is_in(["v01", "v02", "baseline"])).sort("video_id")
        assert after["downloaded_at"].to_list() == before["downloaded_at"].to_list()
        assert server.requests["/baseline.mp4"] == first_requests["/baseline.mp4"]
        assert server.requests["/v01.mp4"] <= first_requests["/v01.mp4"] + 1
        assert store.read("video_failures", ["remote"])["video_id"].to_list() == ["gone"]
        v01 = again.filter(pl.col("video_id") == "v01").row(0, named=True)
        assert v01["url"] == server.url("/v01.mp4") and v01["info_json"] and not v01["watermark_masked"]


def test_cookies_and_signed_urls_are_stored_and_logged_nowhere(generated, resources, instance, tmp_path, caplog, capfd):
    secret, signature = "SECRET-COOKIE-VALUE-4f1c", "SIGNATURE-9a7e"
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(f"# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsessionid\t{secret}\n")
    routes = {"/v01.mp4": Route((generated.root / "videos" / "v01.mp4").read_bytes()),
              "/baseline.mp4": Route((generated.root / "baseline.mp4").read_bytes())}
    caplog.set_level(logging.DEBUG)
    with serve_videos(routes) as server:
        challenge = parse_challenge({
            "name": "cookies",
            "source": {"kind": "yt_dlp", "urls": [server.url(f"/v01.mp4?sig={signature}")],
                       "cookies_file": str(cookies)},
            "baseline": {"url": server.url("/baseline.mp4"), "video_id": "baseline"},
            "prompts": generated.truth["prompts"],
            "max_video_seconds": 20,
        })
        register_challenge(challenge, resources["table_store"], instance)
        result = materialize([videos], partition_key="cookies", resources=resources, instance=instance)
        assert result.success and secret in server.headers["/v01.mp4"]["Cookie"]  # it was sent
    store, objects = resources["table_store"], resources["object_store"]
    tables = {name: store.read(name, ["cookies"]) for name in ("videos", "video_failures", "challenges")}
    assert tables["videos"].height == 2 and "formats" in tables["videos"]["info_json"][0]
    stored_bytes = b"".join(objects.get_bytes(key) for key in objects.list_keys(""))
    events = "\n".join(str(record) for record in instance.all_logs(result.run_id))
    output = capfd.readouterr()
    everything = "\n".join([*(t.write_csv() for t in tables.values()), events, caplog.text, output.out, output.err])
    assert secret not in everything and secret.encode() not in stored_bytes
    assert signature not in tables["videos"]["info_json"][0]
