"""The videos asset with a yt-dlp source over a loopback server: failures recorded, re-runs fetch only what is
missing."""

from __future__ import annotations

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
