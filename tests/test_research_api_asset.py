"""A research_api challenge: its videos asset on the fake API and the loopback video server; the sensor."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import time_machine
from dagster import EnvVar, build_sensor_context, materialize

from automation_support import small_challenge
from research_api_fake import CLIENT_KEY, CLIENT_SECRET, FakeResearchApi, serve_research_api, video
from support.video_server import Route, serve_videos
from tiktokfer_assets.assets.videos import videos
from tiktokfer_assets.automation.new_video_sensor import NewVideoCursor, build_new_video_sensor, fingerprint
from tiktokfer_assets.challenges import parse_challenge
from tiktokfer_assets.registry import register_challenge
from tiktokfer_assets.resources.research_api_usage import TableStoreLedger
from tiktokfer_assets.resources.video_source import ResearchApiConfig, VideoSourceResource
from tiktokfer_assets.sources.research_api import CREDENTIAL_VARIABLES

pytestmark = [pytest.mark.media, pytest.mark.slow]

MUSIC = 6727954870776695557
TODAY = dt.date(2026, 6, 15)
"""The day of every test here: the API, the source and the sensor all read one clock (set to its noon, ticking)."""
IDS = (7300000000000000001, 7300000000000000002, 7300000000000000003)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return small_challenge(tmp_path_factory.mktemp("research") / "small")


@pytest.fixture(autouse=True)
def noon_of_today():
    """One clock for the test's dates, the source's windows and the sensor's cursor: no midnight in between."""
    with time_machine.travel(dt.datetime.combine(TODAY, dt.time(12), dt.timezone.utc), tick=True):
        yield


@pytest.fixture
def served(small, resources, monkeypatch):
    """The fake API (three videos of the sound, the third missing on the host) and the loopback video server."""
    for name, value in zip(CREDENTIAL_VARIABLES, (CLIENT_KEY, CLIENT_SECRET), strict=True):
        monkeypatch.setenv(name, value)
    api = FakeResearchApi([
        video(IDS[0], TODAY - dt.timedelta(days=35), music_id=MUSIC, region_code="GB", hashtag_names=["FaceChallenge"]),
        video(IDS[1], TODAY - dt.timedelta(days=3), music_id=MUSIC),
        video(IDS[2], TODAY - dt.timedelta(days=2), music_id=MUSIC),
        video(7300000000000000009, TODAY, music_id=1),  # another sound
    ])
    routes = {f"/{vid}.mp4": Route((small.root / "videos" / f"{name}.mp4").read_bytes())
              for vid, name in zip(IDS[:2], ("v01", "v02"), strict=True)}
    routes["/baseline.mp4"] = Route((small.root / "baseline.mp4").read_bytes())
    with serve_research_api(api), serve_videos(routes) as server:
        key, secret = (EnvVar(name) for name in CREDENTIAL_VARIABLES)
        config = ResearchApiConfig(client_key=key, client_secret=secret, base_url=api.base_url,
                                   video_url_template=server.url("/{id}.mp4"))
        sources = VideoSourceResource(research_api=config, table_store=resources["table_store"], max_attempts=2,
                                      backoff_s=0.01, socket_timeout_s=5)
        challenge = parse_challenge({
            "name": "sound",
            "source": {"kind": "research_api", "music_id": MUSIC, "start_date": str(TODAY - dt.timedelta(days=40))},
            "baseline": {"url": server.url("/baseline.mp4"), "video_id": "baseline"},
            "prompts": small.truth["prompts"], "max_video_seconds": 20,
        })
        yield api, {**resources, "video_sources": sources}, challenge


def test_videos_asset_stores_the_apis_videos_with_their_sound(served, instance):
    api, resources, challenge = served
    register_challenge(challenge, resources["table_store"], instance)
    assert materialize([videos], partition_key="sound", resources=resources, instance=instance).success
    store = resources["table_store"]
    rows = {r["video_id"]: r for r in store.read("videos", ["sound"]).iter_rows(named=True)}
    assert set(rows) == {"baseline", str(IDS[0]), str(IDS[1])}
    first = rows[str(IDS[0])]
    assert first["sound_id"] == str(MUSIC) and first["author"] == "user1" and first["region_code"] == "GB"
    assert json.loads(first["hashtags"]) == ["facechallenge"] and first["view_count"] == 1001
    assert first["create_time"].date() == TODAY - dt.timedelta(days=35)
    assert first["duration_s"] > 5 and first["url"].endswith(f"/{IDS[0]}.mp4")
    failures = store.read("video_failures", ["sound"])
    assert failures["video_id"].to_list() == [str(IDS[2])] and "404" in failures["reason"][0]
    assert [(q["start_date"], q["end_date"]) for q in api.queries] == [
        ((TODAY - dt.timedelta(days=40)).strftime("%Y%m%d"), (TODAY - dt.timedelta(days=11)).strftime("%Y%m%d")),
        ((TODAY - dt.timedelta(days=10)).strftime("%Y%m%d"), TODAY.strftime("%Y%m%d")),
    ]
    assert TableStoreLedger(store).used(TODAY) == 2


def test_the_sensor_asks_only_for_the_days_since_its_last_tick(served, instance):
    api, resources, challenge = served
    register_challenge(challenge, resources["table_store"], instance)
    sensor = build_new_video_sensor()

    def tick(cursor=None):
        with build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
            return sensor(context)

    first = tick()
    assert [r.run_key for r in first.run_requests] == [f"sound:videos:{fingerprint([str(i) for i in IDS])}"]
    assert len(api.queries) == 2  # the whole range: two 30-day windows
    assert NewVideoCursor.parse(first.cursor).listed == {"sound": {"version": challenge.version, "day": str(TODAY)}}

    api.queries.clear()
    api.videos.append(video(7300000000000000004, TODAY, music_id=MUSIC))
    later = tick(first.cursor)
    assert [(q["start_date"], q["end_date"]) for q in api.queries] == [(TODAY.strftime("%Y%m%d"),) * 2]
    assert [r.run_key for r in later.run_requests] == [f"sound:videos:{fingerprint(['7300000000000000004'])}"]
