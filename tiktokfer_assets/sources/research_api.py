"""Videos found by TikTok's Research API (video query), downloaded by their URL with yt-dlp.

The API (https://developers.tiktok.com/doc/research-api-specs-query-videos) returns
metadata, not files: ``POST /v2/research/video/query/?fields=...`` with a query of
``and`` conditions (``music_id``, ``hashtag_name``, ``keyword``, ``region_code``,
``username``), a ``start_date``/``end_date`` (``YYYYMMDD``, at most 30 days apart)
and ``max_count`` (at most 100); pages follow with the returned ``cursor`` and
``search_id`` while ``has_more`` is true. Requests carry a client access token
(``POST /v2/oauth/token/``, ``grant_type=client_credentials``, valid for
``expires_in`` seconds); a 401 ``access_token_invalid`` gets one fresh token and one
retry. 429 (``rate_limit_exceeded``) and 5xx answers, timeouts and dropped
connections are retried with exponential backoff and jitter (at least the
``Retry-After`` the answer asks for). The project's daily request quota (1,000
query requests a day) is counted before each attempt in a :class:`RequestLedger`
(persisted by the caller, so separate runs and sensor ticks share it); a spent
quota raises :class:`QuotaExhausted` before anything is sent, the token request included.

Each video is then fetched from ``video_url_template`` (TikTok's canonical
``https://www.tiktok.com/@{username}/video/{id}``) by a yt-dlp source, and the
API's metadata (author, description, hashtags, music id, counts, create time,
region) fills the ``videos`` columns yt-dlp does not know, ``sound_id`` included.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import requests

from tiktokfer_assets.sources.base import FetchedVideo, FetchError, VideoRef, VideoSource
from tiktokfer_assets.sources.download_pool import backoff_delay

log = logging.getLogger(__name__)

API_URL = "https://open.tiktokapis.com"
TOKEN_PATH = "/v2/oauth/token/"
QUERY_PATH = "/v2/research/video/query/"
VIDEO_FIELDS = (
    "id", "username", "video_description", "hashtag_names", "music_id", "view_count", "like_count",
    "comment_count", "share_count", "create_time", "region_code",
)
CONDITION_FIELDS = ("music_id", "hashtag_name", "keyword", "region_code", "username")
MAX_WINDOW_DAYS = 30  # end_date "must be no more than 30 days after the start_date"
PAGE_SIZE = 100  # max_count: "Default is 20, max is 100"
DAILY_REQUEST_LIMIT = 1000
VIDEO_URL_TEMPLATE = "https://www.tiktok.com/@{username}/video/{id}"
CREDENTIAL_VARIABLES = ("TIKTOKFER_RESEARCH_CLIENT_KEY", "TIKTOKFER_RESEARCH_CLIENT_SECRET")
_TOKEN_MARGIN_S = 60.0  # a token this close to its expiry is renewed before use
_TRANSIENT_STATUS = {429} | set(range(500, 600))


class ResearchApiError(FetchError):
    """The Research API refused a request or could not be reached; the message says which and why."""


class QuotaExhausted(ResearchApiError):
    """Today's request quota is spent; nothing more is asked of the API until 00:00 UTC."""


def missing_credentials_error() -> ResearchApiError:
    return ResearchApiError(
        f"the research_api source needs TikTok Research API credentials: set {' and '.join(CREDENTIAL_VARIABLES)}")


class RequestLedger(Protocol):
    """Query requests made per UTC day, kept where every run and sensor tick sees them."""

    def used(self, day: dt.date) -> int: ...

    def spend(self, day: dt.date, limit: int) -> int:
        """Add one request to ``day``'s count unless it is already ``limit``, atomically; the count before."""
        ...


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def date_windows(start: dt.date, end: dt.date, max_days: int = MAX_WINDOW_DAYS) -> list[tuple[dt.date, dt.date]]:
    """``start``..``end`` (both included) cut into consecutive windows of at most ``max_days`` days, oldest first."""
    if end < start:
        raise ValueError(f"end date {end} is before start date {start}")
    windows = []
    while start <= end:
        last = min(end, start + dt.timedelta(days=max_days - 1))
        windows.append((start, last))
        start = last + dt.timedelta(days=1)
    return windows


def build_query(conditions: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """The API's query object: every condition must hold (``and``); one value is ``EQ``, several are ``IN``."""
    unknown = set(conditions) - set(CONDITION_FIELDS)
    if unknown:
        raise ValueError(f"unknown Research API conditions {sorted(unknown)}; use {', '.join(CONDITION_FIELDS)}")
    clauses = [
        {"operation": "EQ" if len(values) == 1 else "IN", "field_name": name, "field_values": list(values)}
        for name, values in conditions.items() if values
    ]
    if not clauses:
        raise ValueError(f"a Research API query needs at least one of {', '.join(CONDITION_FIELDS)}")
    return {"and": clauses}


def video_metadata(record: Mapping[str, Any], url_template: str = VIDEO_URL_TEMPLATE) -> dict[str, Any]:
    """A ``videos`` row (the columns the API knows) from one video object of a query answer.

    ``create_time`` is the API's Unix time as a UTC datetime, ``hashtags`` its
    ``hashtag_names`` lower-cased (TikTok tags are case-insensitive), ``sound_id`` its
    ``music_id`` as text (ids exceed 2**53: never floats).
    """
    video_id = str(record["id"])
    created = record.get("create_time")
    music_id = record.get("music_id")
    return {
        "video_id": video_id,
        "url": url_template.format(id=video_id, username=record.get("username") or "_"),
        "author": record.get("username"),
        "description": record.get("video_description"),
        "hashtags": list(dict.fromkeys(str(t).lower() for t in record.get("hashtag_names") or [])),
        "sound_id": None if music_id in (None, "") else str(music_id),
        "create_time": None if created is None else dt.datetime.fromtimestamp(int(created), tz=dt.timezone.utc),
        "view_count": record.get("view_count"),
        "like_count": record.get("like_count"),
        "comment_count": record.get("comment_count"),
        "share_count": record.get("share_count"),
        "region_code": record.get("region_code"),
    }


def _json_object(response: requests.Response) -> dict[str, Any]:
    """The answer's JSON object, or ``{}`` when the body is not one."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _api_error(response: requests.Response) -> str:
    """``code: message (log_id ...)`` of an error answer, in either the API's or the OAuth endpoint's shape."""
    body = _json_object(response)
    error = body.get("error")
    if not body:
        return f"HTTP {response.status_code}: {response.text[:200].strip() or 'no JSON body'}"
    if isinstance(error, dict):  # research endpoints: {"error": {"code", "message", "log_id"}}
        return f"HTTP {response.status_code} {error.get('code')}: {error.get('message')} (log_id {error.get('log_id')})"
    if isinstance(error, str):  # OAuth: {"error", "error_description", "log_id"}
        return f"HTTP {response.status_code} {error}: {body.get('error_description')} (log_id {body.get('log_id')})"
    return f"HTTP {response.status_code}"


@dataclass
class ResearchApiClient:
    """A client of the video query endpoint that keeps to the daily quota (see the module doc).

    The client secret is sent only in the token request's form body; neither it nor
    the token appears in any message.
    """

    client_key: str
    client_secret: str = field(repr=False)
    ledger: RequestLedger
    base_url: str = API_URL
    daily_request_limit: int = DAILY_REQUEST_LIMIT
    max_attempts: int = 5
    backoff_s: float = 2.0
    backoff_max_s: float = 60.0
    timeout_s: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], dt.datetime] = _utcnow
    _session: requests.Session = field(default_factory=requests.Session, init=False, repr=False)
    _token: str | None = field(default=None, init=False, repr=False)
    _token_expires: dt.datetime | None = field(default=None, init=False, repr=False)
    _rng: random.Random = field(default_factory=random.Random, init=False, repr=False)

    def _post(self, what: str, path: str, *, counted: bool = False, **kwargs: Any) -> requests.Response:
        """POST with retries of transient failures; the answer that is not transient (any status) is returned.

        ``counted``: every attempt is a request against the daily quota (a retried 429 was sent too).
        """
        url = self.base_url.rstrip("/") + path
        for attempt in range(1, self.max_attempts + 1):
            if counted:
                self._spend()
            try:
                response = self._session.post(url, timeout=self.timeout_s, **kwargs)
                if response.status_code not in _TRANSIENT_STATUS:
                    return response
                problem = _api_error(response)
            except (requests.ConnectionError, requests.Timeout) as exc:
                response, problem = None, f"{type(exc).__name__}: {exc}"
            if attempt == self.max_attempts:
                break
            delay = backoff_delay(attempt, self.backoff_s, self.backoff_max_s, self._rng)
            retry_after = response.headers.get("Retry-After", "") if response is not None else ""
            if retry_after.isdigit():
                delay = max(delay, float(retry_after))
            log.info("%s: %s (attempt %d/%d), retrying in %.1f s", what, problem, attempt, self.max_attempts, delay)
            self.sleep(delay)
        raise ResearchApiError(f"TikTok Research API {what}: {problem} (gave up after {self.max_attempts} attempts)",
                               transient=True)

    def _access_token(self) -> str:
        """The client access token, fetched when there is none or it is about to expire."""
        now = self.clock()
        if self._token and self._token_expires and now < self._token_expires:
            return self._token
        response = self._post("token request", TOKEN_PATH, data={
            "client_key": self.client_key, "client_secret": self.client_secret, "grant_type": "client_credentials",
        }, headers={"Cache-Control": "no-cache"})
        body = _json_object(response) if response.ok else {}
        if not body.get("access_token"):
            raise ResearchApiError(
                f"TikTok Research API token request refused ({_api_error(response)}); "
                f"check {' and '.join(CREDENTIAL_VARIABLES)}")
        self._token = body["access_token"]
        lifetime = max(0.0, float(body.get("expires_in", 0)) - _TOKEN_MARGIN_S)
        self._token_expires = now + dt.timedelta(seconds=lifetime)
        return self._token

    def _bearer(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """requests' auth hook: the token is asked for as each attempt is sent, after its quota check."""
        request.headers["Authorization"] = f"Bearer {self._access_token()}"
        return request

    def _spend(self) -> None:
        """Count one query request against today's quota (UTC), or raise :class:`QuotaExhausted`."""
        day = self.clock().date()
        used = self.ledger.spend(day, self.daily_request_limit)
        if used >= self.daily_request_limit:
            raise QuotaExhausted(
                f"TikTok Research API daily quota spent: {used} of {self.daily_request_limit} requests used on "
                f"{day.isoformat()} (UTC); it resets at 00:00 UTC")

    def query_page(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """One page of the video query: the answer's ``data`` (``videos``, ``cursor``, ``has_more``, ``search_id``)."""
        params = {"fields": ",".join(VIDEO_FIELDS)}
        renewed = False
        while True:
            response = self._post("video query", QUERY_PATH, counted=True, params=params, json=dict(body),
                                  auth=self._bearer)
            if response.status_code == 401 and not renewed:
                self._token, renewed = None, True  # expired or revoked token: one fresh token, one retry
                continue
            payload = _json_object(response)
            if not response.ok or (payload.get("error") or {}).get("code", "ok") != "ok":
                raise ResearchApiError(f"TikTok Research API video query refused: {_api_error(response)}")
            return payload.get("data") or {}

    def query_videos(
        self, query: Mapping[str, Any], start: dt.date, end: dt.date, limit: int
    ) -> Iterator[dict[str, Any]]:
        """Video objects of ``query`` created from ``start`` to ``end`` (one window), page by page, up to ``limit``."""
        body: dict[str, Any] = {"query": query, "start_date": start.strftime("%Y%m%d"),
                                "end_date": end.strftime("%Y%m%d")}
        returned = 0
        while returned < limit:
            data = self.query_page({**body, "max_count": min(PAGE_SIZE, limit - returned)})
            videos = data.get("videos") or []
            yield from videos[: limit - returned]
            returned += len(videos)
            if not data.get("has_more"):
                return
            if data.get("cursor") == body.get("cursor", 0) and not videos:
                raise ResearchApiError(f"TikTok Research API video query: has_more without progress at cursor "
                                       f"{data.get('cursor')} (search_id {data.get('search_id')})")
            body.update(cursor=data.get("cursor"), search_id=data.get("search_id"))


@dataclass(frozen=True)
class VideoQuery:
    """What to ask the API: conditions (field -> values, all must hold) and the creation dates (both included)."""

    conditions: Mapping[str, Sequence[str]]
    start: dt.date
    end: dt.date | None = None  # None: today (UTC) when listing

    def from_day(self, day: dt.date) -> VideoQuery:
        """The same query, without the days before ``day``."""
        return replace(self, start=max(self.start, day))


@dataclass(frozen=True)
class ResearchApiSource:
    """The videos ``query`` finds, fetched from ``video_url_template`` by ``fetcher`` (a yt-dlp source)."""

    client: ResearchApiClient
    query: VideoQuery
    fetcher: VideoSource
    video_url_template: str = VIDEO_URL_TEMPLATE

    def from_day(self, day: dt.date) -> ResearchApiSource:
        """This source listing only videos created on or after ``day`` (a sensor's window since its last tick)."""
        return replace(self, query=self.query.from_day(day))

    def list_videos(self, limit: int) -> list[VideoRef]:
        """Up to ``limit`` videos, window by window (oldest first), each id once, the API's metadata in ``info``."""
        end = self.query.end or self.client.clock().date()
        if self.query.start > end:
            return []
        api_query = build_query(self.query.conditions)
        refs: dict[str, VideoRef] = {}
        for start, last in date_windows(self.query.start, end):
            for record in self.client.query_videos(api_query, start, last, limit - len(refs)):
                metadata = video_metadata(record, self.video_url_template)
                refs.setdefault(metadata["video_id"], VideoRef(metadata["video_id"], metadata["url"],
                                                               {"metadata": metadata}))
            if len(refs) >= limit:
                break
        return list(refs.values())[:limit]

    def __reduce__(self):
        """A download runs in a child process (``download_pool``): it gets the fetcher, never the API client
        (its token, ledger and table store stay in this process)."""
        return ResearchApiSource, (None, self.query, self.fetcher, self.video_url_template)

    def fetch(self, ref: VideoRef, dest_dir: Path) -> FetchedVideo:
        """Download with yt-dlp; the API's metadata wins over yt-dlp's where the API has a value."""
        fetched = self.fetcher.fetch(ref, dest_dir)
        known = {k: v for k, v in ref.info.get("metadata", {}).items() if v is not None}
        fetched.metadata.update(known)
        return fetched
