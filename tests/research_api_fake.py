"""A local fake of TikTok's Research API on loopback, for tests: the token and video query endpoints.

The shapes follow TikTok's public documentation (read 2026-12):

- token: https://developers.tiktok.com/doc/client-access-token-management
  (``POST /v2/oauth/token/``, form body ``client_key``, ``client_secret``,
  ``grant_type=client_credentials``; answer ``access_token``, ``expires_in`` (7200 s),
  ``token_type: Bearer``; OAuth errors as ``error``, ``error_description``, ``log_id``,
  https://developers.tiktok.com/doc/oauth-error-handling);
- video query: https://developers.tiktok.com/doc/research-api-specs-query-videos and
  https://developers.tiktok.com/doc/research-api-get-started (``POST
  /v2/research/video/query/?fields=...``, ``Authorization: Bearer <token>``, JSON body
  ``query`` {``and``/``or``/``not``: [{``operation``, ``field_name``, ``field_values``}]},
  ``start_date``/``end_date`` ``YYYYMMDD`` at most 30 days apart, ``max_count`` <= 100,
  ``cursor``, ``search_id``; answer ``{"data": {"videos", "cursor", "has_more",
  "search_id"}, "error": {"code": "ok", "message", "log_id"}}``);
- errors: https://developers.tiktok.com/doc/tiktok-api-v2-error-handling (401
  ``access_token_invalid``, 400 ``invalid_params``, 429 ``rate_limit_exceeded``, 500
  ``internal_error``); the daily quota (1,000 requests a day) answers 429
  ``rate_limit_exceeded`` too (https://www.getphyllo.com/post/tiktok-api-rate-limits-in-2026-quotas-errors-workarounds).

Only ``and`` conditions with ``EQ``/``IN`` are implemented (what the source sends).
Misbehaviour on demand: :meth:`FakeResearchApi.expire_tokens` (the next query gets a
401), :meth:`FakeResearchApi.fail_next` (the next queries get 429 or 5xx), and
``daily_limit`` (query requests beyond it get 429).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CLIENT_KEY = "fake-client-key"
CLIENT_SECRET = "fake-client-secret-do-not-log"
_ERROR_CODES = {400: "invalid_params", 401: "access_token_invalid", 429: "rate_limit_exceeded"}


def video(video_id: int, created: dt.date, **fields: Any) -> dict[str, Any]:
    """A Research API video object created at noon UTC of ``created``; ``fields`` override the defaults."""
    record = {
        "id": video_id, "username": f"user{video_id % 1000}", "video_description": f"video {video_id} #dance",
        "hashtag_names": ["dance"], "music_id": 6568049491721587461, "region_code": "US",
        "create_time": int(dt.datetime.combine(created, dt.time(12), dt.timezone.utc).timestamp()),
        "view_count": 1000 + video_id % 1000, "like_count": 100, "comment_count": 10, "share_count": 1,
    }
    return {**record, **fields}


def _matches(record: dict[str, Any], condition: dict[str, Any]) -> bool:
    name, values = condition["field_name"], [str(v) for v in condition["field_values"]]
    if name == "keyword":
        return any(v.lower() in (record.get("video_description") or "").lower() for v in values)
    if name == "hashtag_name":
        return any(v.lower() in [t.lower() for t in record.get("hashtag_names") or []] for v in values)
    return str(record.get(name)) in values


@dataclass
class FakeResearchApi:
    """The fake's state: its videos, issued tokens, searches, counters and requests seen."""

    videos: list[dict[str, Any]]
    daily_limit: int = 1000
    base_url: str = ""
    queries: list[dict[str, Any]] = field(default_factory=list)  # query bodies received, in order
    token_requests: int = 0
    query_requests: int = 0
    _tokens: dict[str, bool] = field(default_factory=dict)  # token -> still valid
    _searches: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _failures: list[int] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def expire_tokens(self) -> None:
        """Every token issued so far becomes invalid (as after its two hours)."""
        with self.lock:
            self._tokens = dict.fromkeys(self._tokens, False)

    def fail_next(self, *statuses: int) -> None:
        """Answer the next query requests with these statuses (429, 500, 503, ...) before serving again."""
        with self.lock:
            self._failures.extend(statuses)

    # -- endpoints: (status, body, headers) ---------------------------------------------------------

    def token(self, form: dict[str, str]) -> tuple[int, dict, dict]:
        with self.lock:
            self.token_requests += 1
            if form.get("grant_type") != "client_credentials":
                return 400, _oauth_error("unsupported_grant_type", "grant_type must be client_credentials"), {}
            if (form.get("client_key"), form.get("client_secret")) != (CLIENT_KEY, CLIENT_SECRET):
                return 401, _oauth_error("invalid_client", "Client key or secret is incorrect."), {}
            token = f"clt.fake{next(self._ids)}"
            self._tokens[token] = True
        return 200, {"access_token": token, "expires_in": 7200, "token_type": "Bearer"}, {}

    def query(self, headers: dict[str, str], params: dict[str, list[str]], body: dict) -> tuple[int, dict, dict]:
        with self.lock:
            self.query_requests += 1
            self.queries.append(body)
            if self.query_requests > self.daily_limit:
                return _error(429, "Daily quota exceeded. Please try again tomorrow.")
            if self._failures:
                status = self._failures.pop(0)
                return _error(status, "injected", {"Retry-After": "0"} if status == 429 else None)
            token = headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if not self._tokens.get(token):
                return _error(401, "The access token is invalid or not found in the request.")
            fields = params.get("fields", [""])[0].split(",")
            try:
                start = dt.datetime.strptime(body["start_date"], "%Y%m%d").date()
                end = dt.datetime.strptime(body["end_date"], "%Y%m%d").date()
            except (KeyError, ValueError):
                return _error(400, "start_date and end_date must be YYYYMMDD")
            if not 0 <= (end - start).days <= 30:
                return _error(400, "end_date must be no more than 30 days after start_date")
            max_count = int(body.get("max_count", 20))
            if not 1 <= max_count <= 100:
                return _error(400, "max_count must be between 1 and 100")
            search_id = body.get("search_id")
            if search_id is None:
                search_id = str(7201388525814961198 + next(self._ids))
                self._searches[search_id] = [
                    r for r in self.videos
                    if start <= dt.datetime.fromtimestamp(r["create_time"], dt.timezone.utc).date() <= end
                    and all(_matches(r, c) for c in body["query"].get("and", []))
                ]
            elif search_id not in self._searches:
                return _error(400, f"search_id {search_id} is unknown")
            found = self._searches[search_id]
            cursor = int(body.get("cursor", 0))
            page = [{k: v for k, v in r.items() if k in fields} for r in found[cursor:cursor + max_count]]
            data = {"videos": page, "cursor": cursor + len(page), "has_more": cursor + len(page) < len(found),
                    "search_id": search_id}
        return 200, {"data": data, "error": {"code": "ok", "message": "", "log_id": "fake-log"}}, {}


def _error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message, "log_id": "fake-log"}}


def _error(status: int, message: str, headers: dict | None = None) -> tuple[int, dict, dict]:
    return status, _error_body(_ERROR_CODES.get(status, "internal_error"), message), headers or {}


def _oauth_error(error: str, description: str) -> dict:
    return {"error": error, "error_description": description, "log_id": "fake-log"}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's name)
        """Quiet: tests read the fake's counters."""

    def do_POST(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        api = self.server.api
        if url.path == "/v2/oauth/token/":
            status, body, headers = api.token(dict(urllib.parse.parse_qsl(raw)))
        elif url.path == "/v2/research/video/query/":
            status, body, headers = api.query(dict(self.headers.items()), urllib.parse.parse_qs(url.query),
                                              json.loads(raw or "{}"))
        else:
            status, body, headers = 404, _error_body("not_found", url.path), {}
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, api: FakeResearchApi):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.api = api


@contextmanager
def serve_research_api(api: FakeResearchApi) -> Iterator[FakeResearchApi]:
    """Serve ``api`` on 127.0.0.1 (a free port, in ``api.base_url``) until the block ends."""
    server = _Server(api)
    thread = threading.Thread(target=server.serve_forever, name="research-api-fake", daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        api.base_url = f"http://{host}:{port}"
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
