"""Challenge definitions: what a challenge is, how it is validated, and its YAML form.

A challenge is a name (the ``challenge`` partition key), a video source, a baseline
video (the original that started the trend) and its prompts: an ordered list of
``(label, start_s, end_s)`` in the baseline's timeline.

Its expression vocabulary (``expressions``) maps every prompt label to the expression
class its frames are labelled with, or to ``null`` for an instruction ("ready"): a
mapping that leaves out a prompt is refused, naming it; a definition without one
makes every prompt its own class. Files of the older form ``expression_labels: [..]``
keep loading: the listed labels map to themselves, the other prompts to ``null``.

A **content collection** is a definition with a source but neither baseline nor prompts
(any set of contents, e.g. a ``records`` file): its videos are stored and their frames
extracted (faces too when the ``faces`` asset's config asks); the audio and identity
assets skip it (see :mod:`tiktokfer_assets.assets.collection`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Literal, Union

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from tiktokfer_assets.sources.base import check_video_id

NAME_PATTERN = re.compile(r"[a-z0-9_-]{1,64}")


class ChallengeError(ValueError):
    """A challenge definition is invalid; the message says what and how to fix it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Prompt(_Strict):
    label: str = Field(min_length=1, max_length=128)
    start_s: float = Field(ge=0)
    end_s: float

    @model_validator(mode="after")
    def _span(self) -> "Prompt":
        if self.end_s <= self.start_s:
            raise ValueError(f"prompt {self.label!r}: end_s ({self.end_s}) must be after start_s ({self.start_s})")
        return self


class LocalFolderSourceSpec(_Strict):
    kind: Literal["local_folder"]
    path: str


class YtDlpSourceSpec(_Strict):
    """Any URLs yt-dlp handles: single videos, short links, user pages, collections."""

    kind: Literal["yt_dlp"]
    urls: list[str] = Field(min_length=1)
    cookies_file: str | None = None
    sleep_interval_s: float = 0.0
    proxy: str | None = None
    impersonate: str | None = None


class UrlListSourceSpec(_Strict):
    """A CSV/TXT file of video URLs or ids (e.g. a TikTok Research API export)."""

    kind: Literal["url_list"]
    path: str


def _values(value: object) -> object:
    """One value or a list of them, as a list of strings (YAML reads music ids as integers)."""
    if value is None:
        return None
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


_NOT_CONDITIONS = ("kind", "start_date", "end_date")
ResearchApiValues = Annotated[list[Annotated[str, Field(min_length=1)]] | None, BeforeValidator(_values)]


class RecordsSourceSpec(_Strict):
    """A JSON Lines or CSV file of content records: an id, a video URL or local path, any metadata
    (see :mod:`tiktokfer_assets.sources.records`)."""

    kind: Literal["records"]
    path: str


class ResearchApiSourceSpec(_Strict):
    """Videos found by TikTok's Research API: every given condition must hold (several values: any of them).

    ``start_date``..``end_date`` (both included; no end: today, UTC) may be of any length:
    it is queried in windows of at most 30 days. Credentials come from the environment.
    """

    kind: Literal["research_api"]
    music_id: ResearchApiValues = None
    hashtag_name: ResearchApiValues = None
    keyword: ResearchApiValues = None
    region_code: ResearchApiValues = None
    username: ResearchApiValues = None
    start_date: dt.date
    end_date: dt.date | None = None

    @property
    def conditions(self) -> dict[str, list[str]]:
        """The query conditions that are set: field -> values."""
        return {name: values for name, values in self if name not in _NOT_CONDITIONS and values}

    @model_validator(mode="after")
    def _query(self) -> ResearchApiSourceSpec:
        if not self.conditions:
            names = [name for name in type(self).model_fields if name not in _NOT_CONDITIONS]
            raise ValueError(f"a research_api source needs at least one of {', '.join(names)}")
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError(f"end_date {self.end_date} is before start_date {self.start_date}")
        return self


SourceSpec = Annotated[
    Union[LocalFolderSourceSpec, YtDlpSourceSpec, UrlListSourceSpec, RecordsSourceSpec, ResearchApiSourceSpec],
    Field(discriminator="kind"),
]


class BaselineSpec(_Strict):
    """The original video: a local ``path`` or a ``url`` (fetched like any video)."""

    path: str | None = None
    url: str | None = None
    video_id: str | None = None

    @field_validator("video_id")
    @classmethod
    def _video_id(cls, value: str | None) -> str | None:
        return value if value is None else check_video_id(value)

    @model_validator(mode="after")
    def _one_location(self) -> "BaselineSpec":
        if (self.path is None) == (self.url is None):
            raise ValueError("baseline needs exactly one of 'path' or 'url'")
        return self


class WatermarkRegionSpec(_Strict):
    """A rectangle in fractions of the frame, masked between start_s and end_s (None: to the end).

    ``start_frac``/``end_frac`` give the time span as fractions of the video's duration
    instead (TikTok's watermark moves from top-left to bottom-right half-way through).
    """

    x: float = Field(ge=0, le=1)
    y: float = Field(ge=0, le=1)
    w: float = Field(gt=0, le=1)
    h: float = Field(gt=0, le=1)
    start_s: float = Field(default=0.0, ge=0)
    end_s: float | None = None
    start_frac: float | None = Field(default=None, ge=0, le=1)
    end_frac: float | None = Field(default=None, ge=0, le=1)


class ReactionWindow(_Strict):
    """Performers react after hearing a prompt: label frames from end_s+start_s to end_s+end_s."""

    start_s: float = Field(default=1.0, ge=0)
    end_s: float = Field(default=2.5, gt=0)


class ChallengeDefinition(_Strict):
    name: str
    description: str = ""
    source: SourceSpec
    baseline: BaselineSpec | None = None
    prompts: list[Prompt] = []
    expressions: dict[str, str | None] | None = None
    max_videos: int = Field(default=50, ge=1)
    max_video_seconds: float = Field(default=60.0, gt=0)
    reaction_window: ReactionWindow | None = None
    watermark_regions: list[WatermarkRegionSpec] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_PATTERN.fullmatch(value):
            raise ValueError(
                f"challenge name {value!r} is invalid: use 1-64 characters from lower-case letters, "
                "digits, '_' and '-' (it becomes a Dagster partition key and a storage prefix)"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _migrate_expression_labels(cls, data: object) -> object:
        """``expression_labels: [..]`` (the old form) -> ``expressions``: listed labels map to themselves."""
        if not isinstance(data, dict) or "expression_labels" not in data:
            return data
        data = dict(data)
        listed = data.pop("expression_labels") or []
        if "expressions" in data:
            raise ValueError("give either expressions (the mapping) or the older expression_labels, not both")
        if not isinstance(listed, list):
            raise ValueError("expression_labels must be a list of prompt labels")
        labels = [p.get("label") for p in data.get("prompts") or [] if isinstance(p, dict)]
        unknown = sorted(set(listed) - set(labels))
        if unknown:
            raise ValueError(f"expression_labels {unknown} are not prompt labels")
        data["expressions"] = {label: label if label in listed else None for label in labels}
        return data

    @property
    def is_collection(self) -> bool:
        """A content collection: a source without baseline and prompts."""
        return self.baseline is None

    @model_validator(mode="after")
    def _challenge_or_collection(self) -> "ChallengeDefinition":
        if self.baseline is None and self.prompts:
            raise ValueError("prompts need a baseline video to be located in; a content collection has neither")
        if self.baseline is not None and not self.prompts:
            raise ValueError("a challenge needs at least one prompt; a content collection has neither baseline "
                             "nor prompts")
        if self.is_collection and self.reaction_window is not None:
            raise ValueError("reaction_window applies to prompts; a content collection has none")
        return self

    @model_validator(mode="after")
    def _prompts(self) -> "ChallengeDefinition":
        labels = [p.label for p in self.prompts]
        duplicated = sorted({label for label in labels if labels.count(label) > 1})
        if duplicated:
            raise ValueError(f"prompt labels must be unique, repeated: {duplicated}")
        for before, after in zip(self.prompts, self.prompts[1:]):
            if after.start_s < before.start_s:
                raise ValueError(
                    f"prompts must be in the baseline's order: {after.label!r} ({after.start_s}s) "
                    f"comes after {before.label!r} ({before.start_s}s)"
                )
            if after.start_s < before.end_s:
                raise ValueError(
                    f"prompts {before.label!r} ({before.start_s}-{before.end_s}s) and "
                    f"{after.label!r} ({after.start_s}-{after.end_s}s) overlap"
                )
        if self.expressions is not None:
            unknown = sorted(set(self.expressions) - set(labels))
            if unknown:
                raise ValueError(f"expressions maps {unknown}, which are not prompt labels")
            unmapped = [label for label in labels if label not in self.expressions]
            if unmapped:
                raise ValueError(
                    f"expressions has no entry for prompts {unmapped}: map each to its expression class, "
                    "or to null for an instruction"
                )
            empty = sorted(k for k, v in self.expressions.items() if v is not None and not v.strip())
            if empty:
                raise ValueError(f"expressions maps {empty} to an empty class name; use null for an instruction")
        return self

    def expression_of(self, label: str | None) -> str | None:
        """The expression class of a prompt label; None for an instruction or no label."""
        if label is None:
            return None
        if label not in {p.label for p in self.prompts}:
            raise ChallengeError(f"challenge {self.name!r} has no prompt {label!r}")
        return label if self.expressions is None else self.expressions[label]

    @property
    def expression_classes(self) -> list[str]:
        """The challenge's expression classes, sorted."""
        return sorted({c for c in (self.expression_of(p.label) for p in self.prompts) if c is not None})

    def check_baseline_duration(self, duration_s: float) -> None:
        """Raise :class:`ChallengeError` when a prompt ends after the baseline does."""
        late = [p for p in self.prompts if p.end_s > duration_s + 1e-6]
        if late:
            raise ChallengeError(
                f"challenge {self.name!r}: prompts {[p.label for p in late]} end after the baseline's "
                f"end ({duration_s:.3f}s); fix their end_s or the baseline video"
            )

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)

    @property
    def version(self) -> str:
        """Content hash: changes whenever any field of the definition changes."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]


def _resolve_paths(data: dict, base_dir: Path) -> dict:
    """Make relative local paths absolute against the YAML file's folder."""

    def resolve(value: str) -> str:
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else (base_dir / path).resolve())

    data = dict(data)
    source = data.get("source")
    local_kinds = ("local_folder", "url_list", "records")
    if isinstance(source, dict) and source.get("kind") in local_kinds and source.get("path"):
        data["source"] = {**source, "path": resolve(source["path"])}
    baseline = data.get("baseline")
    if isinstance(baseline, dict) and baseline.get("path"):
        data["baseline"] = {**baseline, "path": resolve(baseline["path"])}
    return data


def _format_errors(where: str, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        loc = ".".join(str(part) for part in error["loc"]) or "definition"
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"  {loc}: {message}")
    return f"invalid challenge definition {where}:\n" + "\n".join(lines)


def parse_challenge(data: object, *, where: str = "", base_dir: Path | None = None) -> ChallengeDefinition:
    if not isinstance(data, dict):
        raise ChallengeError(f"invalid challenge definition {where}: expected a mapping, got {type(data).__name__}")
    if base_dir is not None:
        data = _resolve_paths(data, base_dir)
    try:
        return ChallengeDefinition.model_validate(data)
    except ValidationError as exc:
        raise ChallengeError(_format_errors(where, exc)) from None


def load_challenge(path: str | Path) -> ChallengeDefinition:
    """Read and validate one YAML definition; relative paths are relative to the file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ChallengeError(f"cannot read challenge file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ChallengeError(f"challenge file {path} is not valid YAML: {exc}") from exc
    return parse_challenge(data, where=f"in {path}", base_dir=path.parent.resolve())


def challenge_from_json(text: str) -> ChallengeDefinition:
    return parse_challenge(json.loads(text), where="(stored)")


def dump_challenge(challenge: ChallengeDefinition) -> str:
    return yaml.safe_dump(challenge.model_dump(mode="json", exclude_defaults=True), sort_keys=False)
