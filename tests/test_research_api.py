"""The research_api source against the local fake of TikTok's Research API (tests/research_api_fake.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from research_api_fake import CLIENT_KEY, CLIENT_SECRET, FakeResearchApi, serve_research_api, video
from tiktokfer_assets.challenges import ChallengeError, load_challenge, parse_challenge
from tiktokfer_assets.paths import PROJECT_ROOT
from tiktokfer_assets.resources.research_api_usage import USAGE_TABLE, TableStoreLedger
from tiktokfer_assets.resources.table_store import DuckDBTableStore
from tiktokfer_assets.resources.video_source import ResearchApiConfig, VideoSourceResource
from tiktokfer_assets.sources.research_api import (
    QuotaExhausted,
    ResearchApiClient,
    ResearchApiError,
    ResearchApiSource,
    VideoQuery,
    build_query,
    date_windows,
    video_metadata,
)

MUSIC = "6568049491721587461"
DAY = dt.date(2026, 3, 1)


def spec(**changes) -> dict:
    return {"kind": "research_api", "music_id": int(MUSIC), "start_date": DAY.isoformat(),
            "end_date": DAY.isoformat(), **changes}


@pytest.fixture
def store(tmp_path) -> DuckDBTableStore:
    return DuckDBTableStore(path=str(tmp_path / "tables.duckdb"))


def source(api: FakeResearchApi, store, delays: list | None = None, *, limit: int = 1000,
           start: dt.date = DAY, end: dt.date = DAY, **conditions) -> ResearchApiSource:
    """A source over the fake whose backoff is recorded in ``delays`` instead of slept."""
    client = ResearchApiClient(CLIENT_KEY, CLIENT_SECRET, TableStoreLedger(store), base_url=api.base_url,
                               daily_request_limit=limit, max_attempts=3, backoff_s=0.5,
                               sleep=(delays if delays is not None else []).append)
    return ResearchApiSource(client, VideoQuery(conditions or {"music_id": [MUSIC]}, start, end), fetcher=None)


def test_windows_query_and_metadata_are_the_documented_shapes():
    windows = date_windows(dt.date(2026, 1, 1), dt.date(2026, 3, 15))
    assert windows == [(dt.date(2026, 1, 1), dt.date(2026, 1, 30)), (dt.date(2026, 1, 31), dt.date(2026, 3, 1)),
                       (dt.date(2026, 3, 2), dt.date(2026, 3, 15))]
    assert date_windows(DAY, DAY) == [(DAY, DAY)]
    assert build_query({"music_id": [MUSIC], "region_code": ["US", "GB"]}) == {"and": [
        {"operation": "EQ", "field_name": "music_id", "field_values": [MUSIC]},
        {"operation": "IN", "field_name": "region_code", "field_values": ["US", "GB"]},
    ]}
    with pytest.raises(ValueError, match="unknown Research API conditions"):
        build_query({"sound": ["x"]})
    row = video_metadata(video(7312345678901234567, DAY, hashtag_names=["Dance", "dance", "FYP"]))
    assert row["video_id"] == "7312345678901234567" and row["sound_id"] == MUSIC
    assert row["url"] == "https://www.tiktok.com/@user567/video/7312345678901234567"
    assert row["hashtags"] == ["dance", "fyp"] and row["region_code"] == "US" and row["author"] == "user567"
    assert row["create_time"] == dt.datetime(2026, 3, 1, 12, tzinfo=dt.timezone.utc)


def test_pages_follow_cursor_and_search_id(store):
    api = FakeResearchApi([video(i, DAY) for i in range(250)] + [video(999, DAY, music_id=1)])
    with serve_research_api(api):
        refs = source(api, store).list_videos(1000)
    assert [r.video_id for r in refs] == [str(i) for i in range(250)]
    assert refs[0].info["metadata"]["sound_id"] == MUSIC
    first, second, third = api.queries
    assert "search_id" not in first and first["max_count"] == 100
    assert first["query"] == {"and": [{"operation": "EQ", "field_name": "music_id", "field_values": [MUSIC]}]}
    assert (second["cursor"], third["cursor"]) == (100, 200)
    assert second["search_id"] == third["search_id"] is not None
    assert api.token_requests == 1  # one token serves every page
    assert TableStoreLedger(store).used(dt.datetime.now(dt.timezone.utc).date()) == 3


def test_a_long_date_range_is_queried_in_windows_of_30_days(store):
    created = [dt.date(2026, 1, 5), dt.date(2026, 2, 10), dt.date(2026, 3, 14)]
    api = FakeResearchApi([video(i, day) for i, day in enumerate(created)])
    with serve_research_api(api):
        refs = source(api, store, start=dt.date(2026, 1, 1), end=dt.date(2026, 3, 15)).list_videos(100)
        assert [r.video_id for r in refs] == ["0", "1", "2"]
        assert [(q["start_date"], q["end_date"]) for q in api.queries] == [
            ("20260101", "20260130"), ("20260131", "20260301"), ("20260302", "20260315")]
        api.queries.clear()
        assert len(source(api, store, start=dt.date(2026, 1, 1), end=dt.date(2026, 3, 15)).list_videos(1)) == 1
        assert len(api.queries) == 1 and api.queries[0]["max_count"] == 1  # stops once it has enough


def test_an_expired_token_is_renewed_once_and_the_page_retried(store):
    api = FakeResearchApi([video(i, DAY) for i in range(150)])
    with serve_research_api(api):
        src = source(api, store)
        assert len(src.client.query_page({"query": build_query({"music_id": [MUSIC]}), "start_date": "20260301",
                                          "end_date": "20260301", "max_count": 1})["videos"]) == 1
        api.expire_tokens()
        assert len(src.list_videos(1000)) == 150
        assert api.token_requests == 2
        assert api.query_requests == 1 + 1 + 2  # the refused page, then the two pages with the new token
        later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=7200)
        src.client.clock = lambda: later  # the token's two hours are over: renewed before asking, no 401
        assert len(src.list_videos(10)) == 10 and (api.token_requests, api.query_requests) == (3, 5)
    # a token the API keeps refusing fails with its code, not a loop
    with serve_research_api(FakeResearchApi([video(1, DAY)])) as refusing:
        src = source(refusing, store)
        refusing.token = lambda form: (200, {"access_token": "clt.never-valid", "expires_in": 7200}, {})
        with pytest.raises(ResearchApiError, match="access_token_invalid"):
            src.list_videos(10)
        assert refusing.query_requests == 2


def test_429_and_5xx_are_retried_with_backoff(store):
    api = FakeResearchApi([video(i, DAY) for i in range(3)])
    delays: list[float] = []
    with serve_research_api(api):
        api.fail_next(429, 503)
        assert len(source(api, store, delays).list_videos(10)) == 3
        assert len(delays) == 2 and 0.25 <= delays[0] <= 0.5 and 0.5 <= delays[1] <= 1.0  # exponential, jittered
        assert api.query_requests == 3
        api.fail_next(500, 500, 500)
        with pytest.raises(ResearchApiError, match=r"internal_error.*gave up after 3 attempts") as failed:
            source(api, store).list_videos(10)
        assert failed.value.transient
    assert TableStoreLedger(store).used(dt.datetime.now(dt.timezone.utc).date()) == 6  # retries are requests too


def test_the_quota_stops_requests_and_survives_a_restart(store):
    api = FakeResearchApi([video(i, DAY) for i in range(500)])
    with serve_research_api(api):
        def resource() -> VideoSourceResource:  # a fresh resource, as each run or sensor tick builds one
            return VideoSourceResource(
                research_api=ResearchApiConfig(client_key=CLIENT_KEY, client_secret=CLIENT_SECRET,
                                               base_url=api.base_url, daily_request_limit=3),
                table_store=DuckDBTableStore(path=store.path))

        challenge = parse_challenge(challenge_definition(spec()))
        with pytest.raises(QuotaExhausted, match=r"daily quota spent: 3 of 3 requests used on .*resets at 00:00 UTC"):
            resource().for_challenge(challenge).list_videos(500)
        assert api.query_requests == 3 and api.token_requests == 1
        with pytest.raises(QuotaExhausted):
            resource().for_challenge(challenge).list_videos(500)
        assert (api.query_requests, api.token_requests) == (3, 1)  # the restarted resource read the spent count
        usage = store.read(USAGE_TABLE)
        assert usage["challenge"].to_list() == [dt.datetime.now(dt.timezone.utc).date().isoformat()]
        assert usage["requests"].to_list() == [3]


def test_the_apis_own_quota_answer_is_a_clear_error(store):
    api = FakeResearchApi([video(i, DAY) for i in range(300)], daily_limit=1)
    with serve_research_api(api):
        with pytest.raises(ResearchApiError, match=r"rate_limit_exceeded: Daily quota exceeded.*gave up after 3"):
            source(api, store).list_videos(300)


def test_credentials_missing_or_refused_say_which_variables_to_set(store):
    challenge = parse_challenge(challenge_definition(spec()))
    with pytest.raises(ResearchApiError) as missing:
        VideoSourceResource(table_store=store).for_challenge(challenge)
    assert str(missing.value) == ("the research_api source needs TikTok Research API credentials: "
                                  "set TIKTOKFER_RESEARCH_CLIENT_KEY and TIKTOKFER_RESEARCH_CLIENT_SECRET")
    with serve_research_api(FakeResearchApi([])) as api:
        src = ResearchApiClient(CLIENT_KEY, "wrong-secret", TableStoreLedger(store), base_url=api.base_url)
        with pytest.raises(ResearchApiError, match="invalid_client.*check TIKTOKFER_RESEARCH_CLIENT_KEY") as refused:
            src.query_page({})
        assert "wrong-secret" not in str(refused.value) and "wrong-secret" not in repr(src)


def challenge_definition(source_spec: dict, **changes) -> dict:
    return {"name": "sound", "source": source_spec, "baseline": {"url": "http://127.0.0.1/b.mp4"},
            "prompts": [{"label": "go", "start_s": 0.0, "end_s": 1.0}], **changes}


def test_the_spec_validates_conditions_and_dates():
    parsed = parse_challenge(challenge_definition(spec(region_code=["US", "GB"], end_date=None))).source
    assert parsed.conditions == {"music_id": [MUSIC], "region_code": ["US", "GB"]} and parsed.end_date is None
    with pytest.raises(ChallengeError, match="needs at least one of music_id, hashtag_name, keyword"):
        parse_challenge(challenge_definition({"kind": "research_api", "start_date": "2026-01-01"}))
    with pytest.raises(ChallengeError, match="end_date 2025-01-01 is before start_date"):
        parse_challenge(challenge_definition(spec(end_date="2025-01-01")))
    with pytest.raises(ChallengeError, match="source.research_api.start_date: Field required"):
        parse_challenge(challenge_definition({"kind": "research_api", "keyword": "dance"}))



@pytest.mark.parametrize(("name", "music_id"), [("emoji_challenge", "6568049491721587461"),
                                                 ("face_challenge", "6727954870776695557")])
def test_shipped_challenges_list_their_sound_once_credentials_are_set(name, music_id, store):
    challenge = load_challenge(PROJECT_ROOT / "challenges" / f"{name}.yaml")
    assert challenge.source.kind == "research_api" and challenge.source.conditions == {"music_id": [music_id]}
    with pytest.raises(ResearchApiError, match=r"^the research_api source needs .* set TIKTOKFER_RESEARCH_CLIENT_KEY"):
        VideoSourceResource(table_store=store).for_challenge(challenge)
