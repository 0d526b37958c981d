"""The video-source resource: builds each challenge's source from its definition."""

from __future__ import annotations

from pathlib import Path

from dagster import Config, ConfigurableResource

from tiktokfer_assets.challenges import (
    ChallengeDefinition,
    LocalFolderSourceSpec,
    RecordsSourceSpec,
    ResearchApiSourceSpec,
    SourceSpec,
    UrlListSourceSpec,
    YtDlpSourceSpec,
)
from tiktokfer_assets.resources.research_api_usage import TableStoreLedger
from tiktokfer_assets.resources.table_store import TableStore
from tiktokfer_assets.sources.base import SOURCE_URL, VideoRef, VideoSource
from tiktokfer_assets.sources.local_folder import LocalFolderSource, file_ref, video_id_from_name
from tiktokfer_assets.sources.research_api import (
    API_URL,
    DAILY_REQUEST_LIMIT,
    VIDEO_URL_TEMPLATE,
    ResearchApiClient,
    ResearchApiSource,
    VideoQuery,
    missing_credentials_error,
)


class ResearchApiConfig(Config):
    """TikTok Research API settings: credentials as ``EnvVar``s (see ``environments.py``), never in YAML."""

    client_key: str | None = None
    client_secret: str | None = None
    base_url: str = API_URL
    daily_request_limit: int = DAILY_REQUEST_LIMIT
    video_url_template: str = VIDEO_URL_TEMPLATE


class VideoSourceResource(ConfigurableResource):
    """Options shared by every source; the challenge says which source and where.

    ``table_store`` keeps the Research API's daily request count (a research_api source needs it).
    """

    download_workers: int = 4
    max_attempts: int = 4
    backoff_s: float = 2.0
    socket_timeout_s: float = 30.0
    research_api: ResearchApiConfig = ResearchApiConfig()
    table_store: TableStore | None = None
    # one try of one video: killed past this many seconds (a host that trickles bytes), or past this size
    video_deadline_s: float = 600.0
    max_video_bytes: int = 1 << 30

    def _ytdlp(self, urls: list[str], spec: YtDlpSourceSpec | None = None):
        from tiktokfer_assets.sources.ytdlp import YtDlpSource

        options = {} if spec is None else {
            "cookies_file": spec.cookies_file,
            "sleep_interval_s": spec.sleep_interval_s,
            "proxy": spec.proxy,
            "impersonate": spec.impersonate,
        }
        return YtDlpSource(urls, socket_timeout_s=self.socket_timeout_s, max_bytes=self.max_video_bytes, **options)

    def _research_api(self, spec: ResearchApiSourceSpec) -> ResearchApiSource:
        config = self.research_api
        if not (config.client_key and config.client_secret):
            raise missing_credentials_error()
        if self.table_store is None:
            raise ValueError("the research_api source counts its requests in the table store: "
                             "build VideoSourceResource with table_store=")
        client = ResearchApiClient(
            config.client_key, config.client_secret, TableStoreLedger(self.table_store), base_url=config.base_url,
            daily_request_limit=config.daily_request_limit, max_attempts=self.max_attempts, backoff_s=self.backoff_s,
            timeout_s=self.socket_timeout_s,
        )
        query = VideoQuery(spec.conditions, spec.start_date, spec.end_date)
        return ResearchApiSource(client, query, self._ytdlp([]), config.video_url_template)

    def for_challenge(self, challenge: ChallengeDefinition) -> VideoSource:
        return self.for_source(challenge.source)

    def for_source(self, spec: SourceSpec) -> VideoSource:
        """The source a spec describes (a challenge's ``source:``, or a feed the trending monitor watches)."""
        if isinstance(spec, LocalFolderSourceSpec):
            return LocalFolderSource(Path(spec.path))
        if isinstance(spec, YtDlpSourceSpec):
            return self._ytdlp(spec.urls, spec)
        if isinstance(spec, UrlListSourceSpec):
            from tiktokfer_assets.sources.url_list import UrlListSource

            return UrlListSource(Path(spec.path), fetcher=self._ytdlp([]))
        if isinstance(spec, RecordsSourceSpec):
            from tiktokfer_assets.sources.records import RecordsSource

            return RecordsSource(Path(spec.path), fetcher=self._ytdlp([]))
        if isinstance(spec, ResearchApiSourceSpec):
            return self._research_api(spec)
        raise TypeError(f"unknown source spec {type(spec).__name__}")

    def baseline(self, challenge: ChallengeDefinition) -> tuple[VideoSource, VideoRef] | None:
        """The source that fetches the baseline video, and its reference (None for a content collection)."""
        baseline = challenge.baseline
        if baseline is None:
            return None
        if baseline.path is not None:
            path = Path(baseline.path)
            return LocalFolderSource(path.parent), file_ref(path, baseline.video_id or video_id_from_name(path.name))
        # the URL is the baseline's identity: a new URL is fetched again
        ref = VideoRef(baseline.video_id or "baseline", baseline.url, {SOURCE_URL: baseline.url})
        return self._ytdlp([baseline.url]), ref
