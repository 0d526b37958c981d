"""The challenge sensor: YAML definitions dropped in a folder become registered, materialised challenges.

Each tick it looks at the ``*.yaml``/``*.yml`` files of the challenges folder
(``TIKTOKFER_CHALLENGES_DIR``, default ``challenges/`` of the repository). A file
whose bytes changed since the sensor last saw it (the cursor keeps a sha256 per
file) is validated; a valid definition is persisted in the table store
(:func:`store_challenge`), and the sensor's result asks Dagster to add its
``challenge`` partition (the daemon adds it before launching any run; the sensor
itself never writes to the instance) and to run the all-assets job for it with
``run_key = "<name>:<version>"``, so a version of a definition is materialised once
however often it is re-read. An invalid file is reported in the sensor's log and
skipped (until it is edited) without holding up the others. At most
``max_per_tick`` files are handled per tick; the rest wait for the next tick.

Deleting a file does not delete its challenge: its data stays until removed by hand.
"""

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from tiktokfer_assets.automation.jobs import challenge_all_assets_job, challenge_runs
from tiktokfer_assets.challenges import (
    ChallengeDefinition,
    ChallengeError,
    LocalFolderSourceSpec,
    RecordsSourceSpec,
    UrlListSourceSpec,
    load_challenge,
)
from tiktokfer_assets.media.probe import ProbeError, probe
from tiktokfer_assets.paths import PROJECT_ROOT
from tiktokfer_assets.registry import store_challenge
from tiktokfer_assets.resources.table_store import TableStore

CHALLENGES_DIR_ENV = "TIKTOKFER_CHALLENGES_DIR"
DEFINITION_SUFFIXES = (".yaml", ".yml")


def challenges_dir() -> Path:
    """The folder the sensor watches: ``$TIKTOKFER_CHALLENGES_DIR``, else the repository's ``challenges/``."""
    value = os.environ.get(CHALLENGES_DIR_ENV)
    return Path(value).expanduser().resolve() if value else PROJECT_ROOT / "challenges"


@dataclass(frozen=True)
class DefinitionFile:
    name: str  # file name inside the folder: the cursor's key
    path: Path
    digest: str  # sha256 of the bytes


def definition_files(folder: Path) -> list[DefinitionFile]:
    """The YAML files directly in ``folder``, sorted by name, with the sha256 of their bytes."""
    if not folder.is_dir():
        return []
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in DEFINITION_SUFFIXES and p.is_file())
    return [DefinitionFile(p.name, p, hashlib.sha256(p.read_bytes()).hexdigest()) for p in files]


def check_local_files(challenge: ChallengeDefinition) -> None:
    """Raise :class:`ChallengeError` when a local path of the definition is missing or the baseline is too short.

    The same checks a run would fail on, done before anything is registered.
    """
    spec = challenge.source
    if isinstance(spec, LocalFolderSourceSpec) and not Path(spec.path).is_dir():
        raise ChallengeError(f"challenge {challenge.name!r}: video folder {spec.path} does not exist")
    if isinstance(spec, (UrlListSourceSpec, RecordsSourceSpec)) and not Path(spec.path).is_file():
        raise ChallengeError(f"challenge {challenge.name!r}: video list {spec.path} does not exist")
    baseline = challenge.baseline.path if challenge.baseline is not None else None
    if baseline is not None:
        if not Path(baseline).is_file():
            raise ChallengeError(f"challenge {challenge.name!r}: baseline video {baseline} does not exist")
        try:
            duration = probe(baseline).duration_s
        except ProbeError as exc:
            raise ChallengeError(f"challenge {challenge.name!r}: baseline video {baseline}: {exc}") from exc
        challenge.check_baseline_duration(duration)


@dataclass
class ChallengeCursor:
    """Per file: the sha256 last handled and the challenge it defined (None when invalid)."""

    files: dict[str, dict]

    @classmethod
    def parse(cls, text: str | None) -> "ChallengeCursor":
        return cls(json.loads(text)["files"] if text else {})

    def to_json(self) -> str:
        return json.dumps({"files": self.files}, sort_keys=True)

    def owner(self, challenge: str, other_than: str) -> str | None:
        """The file (other than ``other_than``) that already defines ``challenge``."""
        return next(
            (f for f, seen in self.files.items() if seen.get("challenge") == challenge and f != other_than), None
        )


def build_challenge_sensor(
    name: str = "challenge_sensor",
    *,
    max_per_tick: int = 16,
    minimum_interval_seconds: int = 30,
    default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED,
) -> SensorDefinition:
    """The sensor (see the module doc); ``max_per_tick`` bounds the definitions handled per tick."""

    @sensor(
        name=name,
        job=challenge_all_assets_job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=(
            f"Registers new or changed challenge YAML files of ${CHALLENGES_DIR_ENV} (default challenges/) "
            "and materialises each version once."
        ),
    )
    def _sensor(context: SensorEvaluationContext, table_store: TableStore) -> SensorResult:
        folder = challenges_dir()
        cursor = ChallengeCursor.parse(context.cursor)
        files = definition_files(folder)
        present = {f.name for f in files}
        cursor.files = {f: seen for f, seen in cursor.files.items() if f in present}  # deleted files are forgotten
        pending = [f for f in files if cursor.files.get(f.name, {}).get("sha256") != f.digest]
        if len(pending) > max_per_tick:
            context.log.info(f"{len(pending)} definitions changed; handling {max_per_tick} this tick")

        run_requests = []
        for file in pending[:max_per_tick]:
            try:
                challenge = load_challenge(file.path)
                owner = cursor.owner(challenge.name, other_than=file.name)
                if owner is not None:
                    raise ChallengeError(f"challenge {challenge.name!r} is already defined in {owner}")
                check_local_files(challenge)
            except ChallengeError as exc:
                context.log.error(f"skipped {file.path}: {exc}")
                cursor.files[file.name] = {"sha256": file.digest, "challenge": None}
                continue
            changed = store_challenge(challenge, table_store)
            context.log.info(
                f"{file.name}: challenge {challenge.name!r} version {challenge.version} "
                f"{'registered' if changed else 'already registered'}; requesting its run"
            )
            cursor.files[file.name] = {"sha256": file.digest, "challenge": challenge.name}
            run_requests.append(RunRequest(
                run_key=f"{challenge.name}:{challenge.version}",
                partition_key=challenge.name,
                tags={"tiktokfer/challenge_version": challenge.version, "tiktokfer/definition": file.name},
            ))
        return challenge_runs(run_requests, cursor.to_json())

    return _sensor


challenge_sensor = build_challenge_sensor()
