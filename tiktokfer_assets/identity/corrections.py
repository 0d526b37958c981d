"""Manual corrections of tracks and individuals, kept in a YAML file in the repository.

The original pipeline stored its corrections as row numbers of a sorted table, which
silently pointed at other faces as soon as the data changed. Here every correction
names stable ids: track ids (``"<video_id>/t<k>"`` from ``tracking.py``) and
timestamps in seconds. The file is validated with pydantic (unknown keys, malformed
ids and contradictions are errors naming the entry) and applied the same way on
every run:

``split``       ``{track, at_s}``: faces of the track at or after ``at_s`` move to
                track ``"<track>/s<at_ms>"`` (several splits of one track cut it into
                several segments; split points name the original track).
``drop``        ``{track}``: the track's faces leave the dataset.
``keep_apart``  ``{tracks: [a, b, ...]}``: never in one individual (cannot-link).
``merge``       ``{tracks: [a, b, ...]}``: always one individual (must-link).

Splits are applied first, so ``drop``, ``keep_apart`` and ``merge`` name tracks as
they are after the splits (``"v/t0/s4500"`` is the part of ``v/t0`` from 4.5 s on,
``"v/t0"`` the part before). A correction that no longer matches the data (unknown
track, split point outside the track) is returned as a :class:`StaleCorrection` so
the asset can log it and put it in its metadata, never silently ignored.

File layout (corrections are per challenge, so one challenge's run does not report
another's corrections as stale)::

    version: 1
    challenges:
      emoji_challenge:
        split: [{track: "6568.../t0", at_s: 4.5, note: "cut to a second person"}]
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Annotated, Any, Literal

import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

TrackId = Annotated[str, StringConstraints(pattern=r"^\S+/t\d+(/s\d+)?$")]
ChallengeName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,64}$")]
# A face at 4.4999999 s (float noise) is "at" a split point of 4.5 s.
_TIME_EPS = 1e-6


class CorrectionsError(ValueError):
    """The corrections file cannot be read or does not validate."""


@dataclass(frozen=True)
class StaleCorrection:
    """A correction that matched nothing in this run's data."""

    kind: str
    detail: str


@dataclass
class CorrectionReport:
    """What :func:`apply_track_corrections` did: one line per applied correction, and the stale ones."""

    applied: list[str] = field(default_factory=list)
    stale: list[StaleCorrection] = field(default_factory=list)


@dataclass(frozen=True)
class TrackConstraints:
    """``keep_apart`` and ``merge`` as clustering constraints, and the stale entries."""

    cannot_link: set[frozenset[str]]
    must_link: set[frozenset[str]]
    stale: list[StaleCorrection]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    note: str | None = None


class Split(_Entry):
    track: TrackId
    at_s: float = Field(ge=0)

    @property
    def new_track(self) -> str:
        return f"{self.track}/s{round(self.at_s * 1000)}"


class Drop(_Entry):
    track: TrackId


class TrackGroup(_Entry):
    tracks: list[TrackId] = Field(min_length=2)

    @model_validator(mode="after")
    def _distinct(self) -> TrackGroup:
        if len(set(self.tracks)) != len(self.tracks):
            raise ValueError(f"tracks must be distinct, got {self.tracks}")
        return self

    def pairs(self) -> set[frozenset[str]]:
        return {frozenset(pair) for pair in combinations(self.tracks, 2)}


class Corrections(BaseModel):
    """The corrections of one challenge."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    split: list[Split] = []
    drop: list[Drop] = []
    keep_apart: list[TrackGroup] = []
    merge: list[TrackGroup] = []

    @model_validator(mode="after")
    def _consistent(self) -> Corrections:
        seen: dict[str, int] = {}
        for k, entry in enumerate(self.split):
            if entry.new_track in seen:
                raise ValueError(
                    f"split[{k}] cuts {entry.track} at the same millisecond as split[{seen[entry.new_track]}]"
                )
            seen[entry.new_track] = k
        apart = {pair: k for k, group in enumerate(self.keep_apart) for pair in group.pairs()}
        for k, group in enumerate(self.merge):
            clash = group.pairs() & apart.keys()
            if clash:
                pair = min(clash, key=sorted)
                raise ValueError(f"merge[{k}] and keep_apart[{apart[pair]}] contradict each other on {sorted(pair)}")
        return self


class CorrectionsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: Literal[1]
    challenges: dict[ChallengeName, Corrections] = {}


def _entry_at(data: Any, loc: tuple[int | str, ...]) -> Any:
    """The innermost list item on the path ``loc`` into ``data`` (the offending entry)."""
    entry = None
    for key in loc:
        try:
            data = data[key]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(key, int):
            entry = data
    return entry


def load_corrections(path: str | Path, challenge: str) -> Corrections:
    """Validate the whole corrections file at ``path`` and return ``challenge``'s part.

    An empty file, or a challenge without a section, means no corrections. Raises
    :class:`CorrectionsError` naming the file, the entry (``challenges.<name>.<kind>[i]``),
    what is wrong and the entry's content.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise CorrectionsError(f"{path}: not valid YAML: {error}") from error
    if data is None:
        return Corrections()
    try:
        parsed = CorrectionsFile.model_validate(data)
    except ValidationError as error:
        problems = []
        for problem in error.errors():
            where = "".join(f"[{key}]" if isinstance(key, int) else f".{key}" for key in problem["loc"]).lstrip(".")
            entry = _entry_at(data, problem["loc"])
            shown = f" (entry: {entry!r})" if entry is not None else ""
            problems.append(f"  {where or '<file>'}: {problem['msg']}{shown}")
        raise CorrectionsError(f"{path}: invalid corrections:\n" + "\n".join(problems)) from error
    return parsed.challenges.get(challenge, Corrections())


def apply_track_corrections(
    faces_with_tracks: pl.DataFrame, corrections: Corrections
) -> tuple[pl.DataFrame, CorrectionReport]:
    """Apply ``split`` then ``drop`` to a faces table with ``track_id`` and ``timestamp_s``.

    Returns the corrected table (rows in input order, dropped rows removed) and a
    report. A split is stale when its track is absent or ``at_s`` leaves no face
    before or none at/after it; a drop is stale when no face has its track id.
    """
    report = CorrectionReport()
    span = faces_with_tracks.group_by("track_id").agg(
        pl.col("timestamp_s").min().alias("first_s"), pl.col("timestamp_s").max().alias("last_s")
    )
    spans = {row[0]: (row[1], row[2]) for row in span.iter_rows()}
    cuts = []
    for entry in corrections.split:
        if entry.track not in spans:
            report.stale.append(StaleCorrection("split", f"track {entry.track} is not in the data"))
            continue
        first_s, last_s = spans[entry.track]
        if not first_s < entry.at_s - _TIME_EPS <= last_s:
            report.stale.append(
                StaleCorrection(
                    "split",
                    f"split of {entry.track} at {entry.at_s} s leaves the track whole "
                    f"(its faces span {first_s}-{last_s} s)",
                )
            )
            continue
        cuts.append({"track_id": entry.track, "at_s": entry.at_s, "new_track_id": entry.new_track})

    faces = faces_with_tracks.with_row_index("_row")
    if cuts:
        cut_table = pl.DataFrame(cuts).select(
            "track_id", (pl.col("at_s") - _TIME_EPS).alias("cut_s"), "new_track_id"
        )
        faces = (
            faces.sort("timestamp_s")
            .join_asof(
                cut_table.sort("cut_s"),
                left_on="timestamp_s",
                right_on="cut_s",
                by="track_id",
                check_sortedness=False,  # both sides sorted just above; polars cannot check with `by`
            )
            .with_columns(pl.coalesce("new_track_id", "track_id").alias("track_id"))
            .drop("cut_s", "new_track_id")
            .sort("_row")
        )
        moved = faces.group_by("track_id").len()
        counts = dict(moved.iter_rows())
        for cut in cuts:
            n_moved = counts.get(cut["new_track_id"], 0)
            if n_moved == 0:  # a later split point of the same track took all its faces
                report.stale.append(
                    StaleCorrection("split", f"split of {cut['track_id']} at {cut['at_s']} s moves no face")
                )
            else:
                report.applied.append(f"split {cut['track_id']}: {n_moved} faces to {cut['new_track_id']}")

    present = set(faces["track_id"].unique().to_list())
    dropped = []
    for entry in corrections.drop:
        if entry.track in present:
            dropped.append(entry.track)
        else:
            report.stale.append(StaleCorrection("drop", f"track {entry.track} is not in the data"))
    if dropped:
        is_dropped = pl.col("track_id").is_in(dropped)
        for track, n_faces in faces.filter(is_dropped).group_by("track_id").len().sort("track_id").iter_rows():
            report.applied.append(f"drop {track}: {n_faces} faces")
        faces = faces.filter(~is_dropped)
    return faces.drop("_row"), report


def constraints(corrections: Corrections, track_ids: Collection[str]) -> TrackConstraints:
    """``keep_apart`` and ``merge`` as cannot-link and must-link pairs for clustering.

    ``track_ids`` are the tracks being clustered (after splits and drops); a track
    named by a correction but absent from them is reported stale and the entry's
    other tracks are still constrained.
    """
    known = set(track_ids)
    stale = []
    found: dict[str, set[frozenset[str]]] = {"keep_apart": set(), "merge": set()}
    for kind, groups in (("keep_apart", corrections.keep_apart), ("merge", corrections.merge)):
        for k, group in enumerate(groups):
            missing = [track for track in group.tracks if track not in known]
            stale += [StaleCorrection(kind, f"{kind}[{k}]: track {track} is not in the data") for track in missing]
            found[kind] |= {pair for pair in group.pairs() if pair <= known}
    return TrackConstraints(cannot_link=found["keep_apart"], must_link=found["merge"], stale=stale)
