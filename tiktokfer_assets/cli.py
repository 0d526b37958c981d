"""The ``tiktokfer`` command: fetch weights, manage challenges, generate and run the demo."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tiktokfer_assets.challenges import ChallengeError, dump_challenge, load_challenge
from tiktokfer_assets.dataset import DatasetError
from tiktokfer_assets.expression.errors import ExpressionInputError
from tiktokfer_assets.media.frames import FrameExtractionError
from tiktokfer_assets.paths import data_dir, home_dir
from tiktokfer_assets.resources.object_store import ObjectStoreError
from tiktokfer_assets.resources.table_store import TableStoreError
from tiktokfer_assets.weights import WeightsError, fetch_weights

if TYPE_CHECKING:
    import polars as pl


def dagster_instance():
    """The Dagster instance of ``DAGSTER_HOME``, defaulting to the local one under TIKTOKFER_HOME."""
    from dagster import DagsterInstance

    if not os.environ.get("DAGSTER_HOME"):
        os.environ["DAGSTER_HOME"] = str(home_dir() / "dagster")
    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").touch()  # Dagster's defaults: SQLite storage in this folder
    return DagsterInstance.get()


def table_store():
    from tiktokfer_assets.environments import resources_for

    return resources_for()["table_store"]


def cmd_fetch(args) -> None:
    for path, fetched in fetch_weights(args.source, args.only):
        print(f"{'fetched' if fetched else 'ok     '} {path}")


def cmd_challenge_add(args) -> None:
    from tiktokfer_assets.automation.challenge_sensor import check_local_files
    from tiktokfer_assets.registry import register_challenge

    instance, store = dagster_instance(), table_store()
    for file in args.files:
        challenge = load_challenge(file)
        check_local_files(challenge)  # what a run would fail on: missing folder or baseline, unreadable baseline
        changed = register_challenge(challenge, store, instance)
        print(f"{challenge.name}: {'registered' if changed else 'unchanged'} (version {challenge.version})")


def cmd_challenge_list(args) -> None:
    import polars as pl

    from tiktokfer_assets.registry import stored_challenges

    rows = stored_challenges(table_store())
    if rows.is_empty():
        print("no challenges registered; add one with `tiktokfer challenge add FILE.yaml`")
        return
    listed = rows.sort("challenge").select("challenge", "version", pl.col("registered_at").cast(pl.String))
    for row in listed.iter_rows():
        print("\t".join(row))


def cmd_challenge_show(args) -> None:
    from tiktokfer_assets.registry import get_challenge

    print(dump_challenge(get_challenge(table_store(), args.name)), end="")


def cmd_generate(args) -> None:
    from tiktokfer_assets.testkit.generator import build_challenge

    generated = build_challenge(args.out_dir, name=args.name, seed=args.seed)
    print(f"wrote {generated.challenge_yaml} and {generated.truth_json}")


def cmd_materialize(args) -> None:
    from tiktokfer_assets.definitions import defs, materialize_challenge
    from tiktokfer_assets.registry import get_challenge
    from tiktokfer_assets.summary import challenge_summary

    get_challenge(table_store(), args.name)  # an unknown name is one line, before Dagster looks for its partition
    materialize_challenge(defs, args.name, dagster_instance())
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
    materialize_challenge(defs, challenge.name, instance)
    print(challenge_summary(challenge.name, store, resources_object_store()))
    release_id, uri, manifest = export_dataset([challenge.name], instance)
    print(release_summary(release_id, uri, manifest))
    print(demo_agreement(challenge, generated.truth_json, manifest))
    # RetinaFace's body: about 9x cheaper per training image than MobileFaceNet, so minutes on a CPU
    print(train_on_latest_release(instance, resources_for(), {"backbone": "retinaface"}))
    print(f"\nDemo challenge files: {out} (ground truth in {generated.truth_json})")
    print(f"Open the Dagster UI on these results: DAGSTER_HOME={os.environ['DAGSTER_HOME']} "
          ".venv/bin/dagster dev -w workspace.yaml   (or `make ui`), then http://127.0.0.1:3000")


VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".avi")


def cmd_predict(args) -> None:
    import tempfile

    from tiktokfer_assets.assets.expression_model import fetch_model
    from tiktokfer_assets.expression.artifact import load_model, predict_image, predict_video
    from tiktokfer_assets.models import RETINAFACE_WEIGHTS
    from tiktokfer_assets.vision.detector import FaceDetector
    from tiktokfer_assets.weights import require_file

    path = Path(args.path)
    if not path.is_file():
        raise ExpressionInputError(f"{path}: no such file")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tiktokfer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    fetch = sub.add_parser("fetch", help="fetch weights and media from weights/manifest.tsv, verifying sha256")
    fetch.add_argument("--source", default=None,
                       help="local folder laid out like the manifest (default: $TIKTOKFER_FETCH_SOURCE, else the URLs)")
    fetch.add_argument("--only", default=None, help="only manifest paths starting with this (e.g. weights/)")
    fetch.set_defaults(func=cmd_fetch)

    challenge = sub.add_parser("challenge", help="register, list and show challenges").add_subparsers(
        dest="action", required=True
    )
    add = challenge.add_parser("add", help="validate and register challenge YAML files")
    add.add_argument("files", nargs="+")
    add.set_defaults(func=cmd_challenge_add)
    challenge.add_parser("list", help="registered challenges").set_defaults(func=cmd_challenge_list)
    show = challenge.add_parser("show", help="a registered challenge's definition as YAML")
    show.add_argument("name")
    show.set_defaults(func=cmd_challenge_show)

    generate = sub.add_parser("generate", help="write a generated test challenge with its ground truth")
    generate.add_argument("out_dir")
    generate.add_argument("--name", default="generated")
    generate.add_argument("--seed", type=int, default=0)
    generate.set_defaults(func=cmd_generate)

    materialize = sub.add_parser("materialize", help="materialise every asset of a registered challenge")
    materialize.add_argument("name")
    materialize.set_defaults(func=cmd_materialize)

    export = sub.add_parser("export", help="materialise a dataset release, copy it to a folder")
    export.add_argument("challenges", nargs="*", metavar="CHALLENGE",
                        help="challenges to export (default: every registered one)")
    export.add_argument("--out", required=True, help="folder the release is copied to")
    export.set_defaults(func=cmd_export)

    predict = sub.add_parser("predict", help="expression and probability of a face image, or of each face of a video")
    predict.add_argument("path", help="a face image (an aligned crop like the export's) or a video")
    predict.add_argument("--model", default=None, help="model folder or object-store prefix models/<release>/<digest> "
                         "(default: the latest expression_model materialisation's)")
    predict.set_defaults(func=cmd_predict)

    demo = sub.add_parser("demo", help="fetch, generate the demo challenge, register it, materialise everything, "
                          "export the dataset, train the expression model, summarise")
    demo.add_argument("--source", default=None, help="as for fetch")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=cmd_demo)
    add_frames_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ChallengeError, DatasetError, ExpressionInputError, WeightsError, FrameExtractionError, TableStoreError,
            ObjectStoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def add_frames_command(sub) -> None:
    """``tiktokfer frames RECORDS --out DIR``: frames of any contents, without a registered collection."""

    def cmd_frames(args) -> None:
        from tiktokfer_assets.collection_frames import FramesError, extract_frames

        try:
            done = extract_frames(Path(args.records), Path(args.out), every_s=args.every_s,
                                  max_seconds=args.max_seconds, workers=args.workers)
        except FramesError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        for video_id, stage, reason in done.failures.iter_rows():
            print(f"failed: {video_id} ({stage}): {reason}")
        print(f"{done.contents} contents, {done.frames} frames, {done.failures.height} failed: {done.contents_jsonl}")

    frames = sub.add_parser("frames", help="frames of every content of a JSON Lines / CSV records file, written with "
                            "the contents (content_type VIDEO) to a folder")
    frames.add_argument("records", help="records file: an id, a video URL or local path, any metadata per record")
    frames.add_argument("--out", required=True, help="folder for the videos, frames and contents.jsonl")
    frames.add_argument("--every-s", type=float, default=0.5, help="seconds between frames (default 0.5)")
    frames.add_argument("--max-seconds", type=float, default=60.0, help="frames of at most this much of each video")
    frames.add_argument("--workers", type=int, default=None, help="videos decoded at once (default: CPU cores)")
    frames.set_defaults(func=cmd_frames)


if __name__ == "__main__":
    sys.exit(main())
