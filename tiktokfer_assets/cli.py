"""The tiktokfer command: fetch weights, manage challenges, see their status, run the pipeline and the demo.

Every user error (bad input, an unknown challenge, unreachable storage) is one ``error:`` line on
stderr and exit code 2; a failed run is one line naming its failed steps and exit code 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import textwrap
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from dagster import BetaWarning, PreviewWarning

from tiktokfer_assets.challenges import ChallengeError, dump_challenge, load_challenge
from tiktokfer_assets.dataset import DatasetError
from tiktokfer_assets.environments import EnvironmentSettingsError
from tiktokfer_assets.expression.errors import ExpressionInputError
from tiktokfer_assets.media.frames import FrameExtractionError
from tiktokfer_assets.paths import data_dir, home_dir
from tiktokfer_assets.resources.object_store import ObjectStoreError
from tiktokfer_assets.resources.table_store import TableStoreError
from tiktokfer_assets.status import one_line
from tiktokfer_assets.weights import WeightsError, fetch_weights

if TYPE_CHECKING:
    import polars as pl

DESCRIPTION = "Turn short-form video challenges into a labelled facial-expression dataset (Dagster assets)."
EPILOG = """environment:
  TIKTOKFER_ENV   local (default: files under TIKTOKFER_HOME, tables in DuckDB) or production (S3, Postgres)
  TIKTOKFER_HOME  local storage (default: .tiktokfer in the project folder)
  DAGSTER_HOME    the Dagster instance that records the runs (default: TIKTOKFER_HOME/dagster)

exit codes: 0 done, 1 a run failed (the line names its failed steps), 2 a user error"""
HELP_WIDTH = 100  # the epilog's lines are as wide
NO_CHALLENGES = "no challenges registered in {location}; add one with `tiktokfer challenge add FILE.yaml`"


class UsageError(Exception):
    """The command cannot do what was asked (exit code 2)."""


class RunFailed(Exception):
    """A run of the pipeline failed (exit code 1); the message names its failed steps."""


USER_ERRORS = (UsageError, ChallengeError, DatasetError, EnvironmentSettingsError, ExpressionInputError,
               WeightsError, FrameExtractionError, TableStoreError, ObjectStoreError)


def dagster_instance(*, read_only: bool = False):
    """The Dagster instance of ``DAGSTER_HOME``, defaulting to the local one under TIKTOKFER_HOME.

    ``read_only`` (status, list): a DAGSTER_HOME folder that does not exist, or holds nothing yet,
    is read as an empty instance (an ephemeral one) instead of being given its SQLite storage."""
    import sqlalchemy.exc
    import yaml
    from dagster import DagsterInstance, DagsterInvalidConfigError

    if not os.environ.get("DAGSTER_HOME"):
        os.environ["DAGSTER_HOME"] = str(home_dir() / "dagster")
    home = Path(os.environ["DAGSTER_HOME"])
    if read_only and (not home.exists() or not any(home.iterdir())):
        return DagsterInstance.ephemeral()
    try:
        home.mkdir(parents=True, exist_ok=True)
        (home / "dagster.yaml").touch()  # Dagster's defaults: SQLite storage in this folder
        return DagsterInstance.get()
    except (OSError, DagsterInvalidConfigError, yaml.YAMLError, sqlalchemy.exc.SQLAlchemyError) as exc:
        raise UsageError(f"cannot open the Dagster instance in DAGSTER_HOME={home}: {exc}") from exc


@contextmanager
def reported_runs(instance):
    """Turn a run that fails inside the block into one line naming its failed steps.

    :class:`RunFailed` (exit 1), or :class:`UsageError` (exit 2) when a step failed on a user
    error (e.g. weights not fetched). An error raised before any run failed goes through as is.
    """
    from dagster import RunsFilter

    from tiktokfer_assets.status import FAILED_RUN, run_failure

    started = dt.datetime.now(dt.timezone.utc)
    try:
        yield
    except Exception as exc:
        failed = instance.get_runs(RunsFilter(statuses=list(FAILED_RUN), created_after=started), limit=1)
        if not failed:
            raise
        cause = exc
        while cause.__cause__ is not None:
            cause = cause.__cause__
        line = f"run {failed[0].run_id} of {failed[0].job_name} failed: {run_failure(instance, failed[0].run_id)}"
        raise (UsageError if isinstance(cause, USER_ERRORS) else RunFailed)(line) from exc


def registered_partition(name: str):
    """The Dagster instance, once ``name`` is known to be registered and its partition (before Dagster looks)."""
    from tiktokfer_assets.partitions import challenge_partitions
    from tiktokfer_assets.registry import get_challenge

    get_challenge(table_store(), name)
    instance = dagster_instance()
    if not instance.has_dynamic_partition(challenge_partitions.name, name):
        raise UsageError(f"challenge {name!r} is registered in the table store but is no partition of the Dagster "
                         f"instance in DAGSTER_HOME={os.environ['DAGSTER_HOME']}; `tiktokfer challenge add "
                         "FILE.yaml` adds it")
    return instance


def table_store():
    from tiktokfer_assets.environments import resources_for

    return resources_for()["table_store"]


def cmd_fetch(args) -> None:
    results = list(fetch_weights(args.source, args.only))
    if args.verbose:
        for path, fetched in results:
            print(f"{'fetched' if fetched else 'ok     '} {path}")
    print(f"{len(results)} files verified by sha256, {sum(fetched for _, fetched in results)} fetched"
          f"{'' if args.verbose else ' (--verbose lists them)'}")


def cmd_challenge_add(args) -> None:
    from tiktokfer_assets.automation.challenge_sensor import check_local_files
    from tiktokfer_assets.registry import register_challenge

    challenges = [load_challenge(file) for file in args.files]
    for challenge in challenges:
        check_local_files(challenge)  # what a run would fail on: missing folder or baseline, unreadable baseline
    instance, store = dagster_instance(), table_store()
    for challenge in challenges:
        changed = register_challenge(challenge, store, instance)
        print(f"{challenge.name}: {'registered' if changed else 'unchanged'} (version {challenge.version})")


def any_registered(store) -> bool:
    """Whether a challenge is registered (else the hint how to register one is printed)."""
    from tiktokfer_assets.registry import stored_challenges

    if stored_challenges(store).is_empty():
        print(NO_CHALLENGES.format(location=store.location()))
        return False
    return True


def cmd_challenge_list(args) -> None:
    from tiktokfer_assets.definitions import defs, loaded
    from tiktokfer_assets.status import challenge_list

    store = table_store()
    if any_registered(store):
        print(challenge_list(loaded(defs), store, dagster_instance(read_only=True)))


def cmd_status(args) -> None:
    from tiktokfer_assets.definitions import defs, loaded
    from tiktokfer_assets.registry import get_challenge
    from tiktokfer_assets.status import challenge_status, challenges_overview

    store = table_store()
    if args.challenge:
        get_challenge(store, args.challenge)  # an unknown name: one line, before the instance is opened
        print(challenge_status(args.challenge, loaded(defs), store, dagster_instance(read_only=True)))
    elif any_registered(store):
        print(challenges_overview(loaded(defs), store, dagster_instance(read_only=True)))


def cmd_challenge_show(args) -> None:
    from tiktokfer_assets.registry import get_challenge

    print(dump_challenge(get_challenge(table_store(), args.name)), end="")


def cmd_generate(args) -> None:
    from tiktokfer_assets.testkit.generator import build_challenge

    generated = build_challenge(args.out_dir, name=args.name, seed=args.seed)
    print(f"wrote {generated.challenge_yaml} and {generated.truth_json}")


def cmd_materialize(args) -> None:
    from tiktokfer_assets.definitions import defs, materialize_challenge
    from tiktokfer_assets.summary import challenge_summary

    instance = registered_partition(args.name)
    with reported_runs(instance):
        materialize_challenge(defs, args.name, instance)
    print(challenge_summary(args.name, table_store(), resources_object_store()))


def resources_object_store():
    from tiktokfer_assets.environments import resources_for

    return resources_for()["object_store"]


def export_dataset(challenges: list[str], instance) -> tuple[str, str, pl.DataFrame]:
    """Materialise the dataset export of ``challenges`` (all when empty); its release id, URI and manifest."""
    import io

    import polars as pl

    from tiktokfer_assets.assets.dataset_export import selected_versions
    from tiktokfer_assets.dataset.release import MANIFEST, release_root
    from tiktokfer_assets.definitions import build_definitions, materialize_dataset

    selected_versions(table_store(), challenges)  # an unknown name fails here, before any run
    with reported_runs(instance):
        result = materialize_dataset(build_definitions(), instance, challenges)
    metadata = result.asset_materializations_for_node("dataset_export")[0].metadata
    release_id = metadata["release_id"].value
    manifest = pl.read_parquet(io.BytesIO(resources_object_store().get_bytes(f"{release_root(release_id)}/{MANIFEST}")))
    return release_id, metadata["release_uri"].value, manifest


def cmd_export(args) -> None:
    from tiktokfer_assets.dataset.card import release_summary
    from tiktokfer_assets.dataset.release import release_root

    release_id, uri, manifest = export_dataset(args.challenges, dagster_instance())
    objects, root, out = resources_object_store(), release_root(release_id), Path(args.out)
    for key in objects.list_keys(f"{root}/"):
        dest = out / key.removeprefix(f"{root}/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        objects.download(key, dest)
    print(release_summary(release_id, uri, manifest))
    print(f"Copied to {out.resolve()}")


def demo_agreement(challenge, truth_json: Path, manifest) -> str:
    """The demo release's agreement with the generated truth (share of faces with the expression on screen)."""
    import json

    import polars as pl

    from tiktokfer_assets.dataset.agreement import truth_agreement
    from tiktokfer_assets.testkit.truth import expression_on_screen

    faces = table_store().read("faces_with_final_ind", [challenge.name]).select(
        "challenge", "face_id", "is_baseline_creator", x=(pl.col("x1") + pl.col("x2")) / 2)
    instructions = {label for label, expression in challenge.expressions.items() if expression is None}
    counts = truth_agreement(manifest.join(faces, on=["challenge", "face_id"], how="left"),
                             json.loads(truth_json.read_text()), expression_on_screen, instructions)
    return (f"Agreement with the truth: {counts['agreeing']}/{counts['faces']} exported faces "
            f"({counts['share']:.1%}) carry the expression on screen; from instruction prompts: "
            f"{counts['from_instruction_prompts']}; of the baseline creator: {counts['of_baseline_creator']}")


def cmd_demo(args) -> None:
    from tiktokfer_assets.assets.expression_model import train_on_latest_release
    from tiktokfer_assets.dataset.card import release_summary
    from tiktokfer_assets.definitions import defs, materialize_challenge
    from tiktokfer_assets.environments import resources_for
    from tiktokfer_assets.registry import register_challenge
    from tiktokfer_assets.summary import challenge_summary
    from tiktokfer_assets.testkit.generator import build_challenge

    fetch_weights(args.source)
    out = data_dir() / "demo"
    generated = build_challenge(out, name="demo", seed=args.seed)
    challenge = load_challenge(generated.challenge_yaml)
    instance, store = dagster_instance(), table_store()
    register_challenge(challenge, store, instance)
    with reported_runs(instance):
        materialize_challenge(defs, challenge.name, instance)
    print(challenge_summary(challenge.name, store, resources_object_store()))
    release_id, uri, manifest = export_dataset([challenge.name], instance)
    print(release_summary(release_id, uri, manifest))
    print(demo_agreement(challenge, generated.truth_json, manifest))
    with reported_runs(instance):
        # the default backbone (RetinaFace's body): minutes on a CPU; the line has the external test beside the demo's
        print(train_on_latest_release(instance, resources_for()))
    print(f"\nDemo challenge files: {out} (ground truth in {generated.truth_json})")
    print(f"Open the Dagster UI on these results: DAGSTER_HOME={os.environ['DAGSTER_HOME']} "
          ".venv/bin/dagster dev -w workspace.yaml   (or `make ui`), then http://127.0.0.1:3000")


VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".avi")


def cmd_predict(args) -> None:
    path = Path(args.path)
    if not path.is_file():  # before the seconds of importing torch and the models
        raise ExpressionInputError(f"{path}: no such file")
    import tempfile

    from tiktokfer_assets.assets.expression_model import fetch_model
    from tiktokfer_assets.expression.artifact import load_model, predict_image, predict_video
    from tiktokfer_assets.models import RETINAFACE_WEIGHTS
    from tiktokfer_assets.vision.detector import FaceDetector
    from tiktokfer_assets.weights import require_file

    with tempfile.TemporaryDirectory() as tmp:
        model = load_model(fetch_model(args.model, resources_object_store(), dagster_instance, Path(tmp)))
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        label, probability = predict_image(model, path)
        print(f"{path.name}: {label} {probability:.3f}")
        return
    rows = predict_video(model, path, FaceDetector(require_file(RETINAFACE_WEIGHTS)))
    if not rows:
        print(f"{path.name}: no face found")
    for row in rows:
        print(f"{path.name} {row['timestamp_s']:.1f} s face {row['face']}: "
              f"{row['expression']} {row['probability']:.3f}")


class Parser(argparse.ArgumentParser):
    """argparse with plain-text help and usage errors in one line (exit code 2)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)

    def error(self, message: str):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def command(sub, name: str, func, summary: str, description: str | None = None) -> argparse.ArgumentParser:
    """A subcommand running ``func``: ``summary`` in its parent's list, ``description`` (else it) in its help."""
    text = description or summary[0].upper() + summary[1:] + "."
    parser = sub.add_parser(name, help=summary, description=textwrap.fill(text, HELP_WIDTH))
    parser.set_defaults(func=func)
    return parser


def add_fetch(sub) -> None:
    fetch = command(sub, "fetch", cmd_fetch, "fetch weights and media listed in weights/manifest.tsv, verifying sha256")
    fetch.add_argument("--source", default=None,
                       help="local folder laid out like the manifest (default: $TIKTOKFER_FETCH_SOURCE, else the URLs)")
    fetch.add_argument("--only", default=None, metavar="PREFIX",
                       help="only manifest paths starting with PREFIX (e.g. weights/)")
    fetch.add_argument("--verbose", action="store_true", help="list every file and whether it was fetched")


def add_challenge(sub) -> None:
    challenge = command(sub, "challenge", None, "register, list and show challenges")
    actions = challenge.add_subparsers(dest="action", required=True, metavar="ACTION",
                                       help="what to do (tiktokfer challenge ACTION --help for its arguments)")
    add = command(actions, "add", cmd_challenge_add, "validate challenge YAML files and register them",
                  "Validate challenge YAML files, check their local files, store their definitions and add "
                  "their partitions. A file that registers nothing (same version) is reported unchanged.")
    add.add_argument("files", nargs="+", metavar="FILE", help="a challenge YAML file (see challenges/)")
    command(actions, "list", cmd_challenge_list, "registered challenges with their version and state",
            "Registered challenges: version, registration time and state (registered: nothing materialised; "
            "partial; materialised: every asset; running; failed: the latest run of an asset failed).")
    show = command(actions, "show", cmd_challenge_show, "a registered challenge's definition as YAML")
    show.add_argument("name", help="the challenge's name")


def add_status(sub) -> None:
    status = command(sub, "status", cmd_status, "what is stored and what ran, per challenge (read-only)",
                     "Per asset of a challenge: state, rows in the table store, failures the rows record, "
                     "asset checks, last materialisation and its run; then the last run and the last failed "
                     "run. Without CHALLENGE, one line per registered challenge. Read-only: it runs nothing and "
                     "changes no row or partition.")
    status.add_argument("challenge", nargs="?", metavar="CHALLENGE", help="a registered challenge (default: all)")


def add_generate(sub) -> None:
    generate = command(sub, "generate", cmd_generate, "write a generated test challenge with its ground truth")
    generate.add_argument("out_dir", metavar="OUT_DIR",
                          help="folder for the baseline, the videos, challenge.yaml and truth.json")
    generate.add_argument("--name", default="generated", help="the challenge's name (default: generated)")
    generate.add_argument("--seed", type=int, default=0, help="random seed of the performances (default: 0)")


def add_materialize(sub) -> None:
    materialize = command(sub, "materialize", cmd_materialize,
                          "materialise every asset of a registered challenge, then summarise its tables")
    materialize.add_argument("name", help="a registered challenge (see `tiktokfer challenge list`)")


def add_export(sub) -> None:
    export = command(sub, "export", cmd_export, "materialise a dataset release and copy it to a folder")
    export.add_argument("challenges", nargs="*", metavar="CHALLENGE",
                        help="challenges to export (default: every registered one)")
    export.add_argument("--out", required=True, help="folder the release is copied to")


def add_predict(sub) -> None:
    predict = command(sub, "predict", cmd_predict,
                      "expression and probability of a face image, or of each face of a video")
    predict.add_argument("path", help="a face image (an aligned crop like the export's) or a video")
    predict.add_argument("--model", default=None, help="model folder or object-store prefix models/<release>/<digest> "
                         "(default: the latest expression_model materialisation's)")


def add_demo(sub) -> None:
    demo = command(sub, "demo", cmd_demo, "fetch, generate the demo challenge, register it, materialise everything, "
                   "export the dataset, train the expression model, summarise")
    demo.add_argument("--source", default=None, help="as for fetch")
    demo.add_argument("--seed", type=int, default=0, help="random seed of the demo's performances (default: 0)")


def cmd_frames(args) -> None:
    from tiktokfer_assets.collection_frames import FramesError, extract_frames

    try:
        done = extract_frames(Path(args.records), Path(args.out), every_s=args.every_s, max_seconds=args.max_seconds,
                              workers=args.workers)
    except FramesError as exc:
        raise UsageError(str(exc)) from exc
    for video_id, stage, reason in done.failures.iter_rows():
        print(f"failed: {video_id} ({stage}): {one_line(reason)}")
    print(f"{done.contents} contents, {done.frames} frames, {done.failures.height} failed: {done.contents_jsonl}")


def add_frames(sub) -> None:
    frames = command(sub, "frames", cmd_frames, "frames of every content of a records file, written to a folder",
                     "Store every video of a JSON Lines or CSV records file (an id, a video URL or local path, any "
                     "metadata per record) under OUT, extract its frames (at most --max-seconds of each, many "
                     "videos at once) and write OUT/contents.jsonl: one record per readable video with its "
                     "metadata, content_type VIDEO and its frames (schemas/content.schema.json). Needs no "
                     "registered challenge; a video that cannot be read is printed as failed.")
    frames.add_argument("records", metavar="RECORDS", help="the records file (.jsonl, .ndjson or .csv)")
    frames.add_argument("--out", required=True, metavar="OUT", help="folder for the videos, frames and contents.jsonl")
    frames.add_argument("--every-s", type=float, default=0.5, help="seconds between frames (default: 0.5)")
    frames.add_argument("--max-seconds", type=float, default=60.0, help="frames of at most this much of each video "
                        "(default: 60)")
    frames.add_argument("--workers", type=int, default=None, help="videos decoded at once (default: one per CPU core)")


COMMANDS = (add_fetch, add_challenge, add_status, add_generate, add_materialize, add_export, add_predict, add_demo,
            add_frames)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="tiktokfer", description=DESCRIPTION, epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="what to do (tiktokfer COMMAND --help for its arguments)")
    for add in COMMANDS:
        add(sub)
    return parser


def error_code(exc: BaseException) -> int | None:
    """The exit code of an error the command reports in one line (None: a bug, shown with its traceback)."""
    if isinstance(exc, RunFailed):
        return 1
    if isinstance(exc, USER_ERRORS):
        return 2
    if isinstance(exc, OSError) and exc.filename:  # a path that cannot be read or written
        return 2
    return None


def main(argv: list[str] | None = None) -> int:
    with warnings.catch_warnings():
        # Dagster flags the partitioned asset checks (a preview feature) on every import of the code location
        warnings.filterwarnings("ignore", category=PreviewWarning)
        warnings.filterwarnings("ignore", category=BetaWarning)
        args = build_parser().parse_args(argv)
        try:
            args.func(args)
        except Exception as exc:
            code = error_code(exc)
            if code is None:
                raise
            text = f"{exc.filename}: {exc.strerror}" if isinstance(exc, OSError) and exc.filename else str(exc)
            print(f"error: {one_line(text)}", file=sys.stderr)
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
