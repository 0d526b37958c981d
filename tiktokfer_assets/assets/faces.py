"""Asset 4, ``faces``: RetinaFace MobileNet-0.25 on every frame, batched on the GPU resource's device."""

import base64
from typing import TYPE_CHECKING

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetOut,
    Config,
    MetadataValue,
    Output,
    multi_asset,
)

from tiktokfer_assets.assets.collection import FACES_NOT_ASKED, skipped_outputs
from tiktokfer_assets.models import RETINAFACE_WEIGHTS
from tiktokfer_assets.partitions import challenge_partitions
from tiktokfer_assets.resources.gpu import GPU_OP_TAGS, GPU_POOL, GpuResource
from tiktokfer_assets.resources.object_store import ObjectStore
from tiktokfer_assets.resources.table_store import TableStore
from tiktokfer_assets.scope import ALIGNED, FACES, ChallengeScope, challenge_scope
from tiktokfer_assets.tables import conform
from tiktokfer_assets.vision.align import (
    ARCFACE_SIZE,
    TEMPLATE_ARCFACE_112,
    align_face,
    aligned_landmarks,
    roll_degrees,
)
from tiktokfer_assets.vision.crops import contact_sheet, decode_image, encode_jpeg, upright_crop
from tiktokfer_assets.vision.pipeline import model_parallelism, pipelined
from tiktokfer_assets.weights import require_file

if TYPE_CHECKING:  # the detector imports torch: only the step that runs it pays for it
    from tiktokfer_assets.vision.detector import Detection

NOFACE_COLUMNS = ("frame_id", "video_id", "timestamp_s", "object_key", "prompt_label", "expression")


class FacesConfig(Config):
    score_threshold: float = 0.9
    max_size: int = 640
    """Longer side (px) frames are resized to before detection."""
    margin: float = 0.2
    """Context crop margin on each side, as a fraction of the box's longer side (the aligned crop is fixed:
    112x112 on the ArcFace template)."""
    jpeg_quality: int = 90
    chunk_frames: int = 32
    """Frames per detector call (it batches within them); a chunk is decoded ahead and one finished behind
    on a thread pool while the detector runs, so about four chunks are held in memory at once."""
    contact_sheet_faces: int = 48
    content_collections: bool = False
    """Detect faces in content collections too (challenges always are); their identity assets skip them still."""


def face_crops(image, detection: "Detection", margin: float) -> tuple[object, object, float, float]:
    """The upright context crop, the 112x112 ArcFace-aligned crop, the face's roll in the frame and
    the roll of its landmarks mapped into the aligned crop (degrees)."""
    roll = roll_degrees(detection.landmarks)
    aligned = align_face(image, detection.landmarks, ARCFACE_SIZE, TEMPLATE_ARCFACE_112)
    aligned_roll = roll_degrees(aligned_landmarks(detection.landmarks, TEMPLATE_ARCFACE_112))
    return upright_crop(image, detection.box, roll, margin), aligned, roll, aligned_roll


def face_row(frame: dict, rank: int, detection: "Detection", keys: tuple[str, ...], rolls: tuple[float, float]) -> dict:
    x1, y1, x2, y2 = detection.box
    landmarks = {
        f"lm{i}_{axis}": value for i, point in enumerate(detection.landmarks) for axis, value in zip("xy", point)
    }
    return {
        "face_id": f"{frame['frame_id']}/{rank}",
        "frame_id": frame["frame_id"],
        "video_id": frame["video_id"],
        "timestamp_s": frame["timestamp_s"],
        "x1": x1, "y1": y1, "x2": x2, "y2": y2,
        "score": detection.score,
        **landmarks,
        "rotation": detection.rotation,
        "truncated": detection.truncated,
        "frame_width": frame["width"],
        "frame_height": frame["height"],
        "object_key": keys[0],
        "aligned_key": keys[1],
        "roll_deg": rolls[0],
        "aligned_roll_deg": rolls[1],
        "prompt_label": frame["prompt_label"],
        "expression": frame["expression"],
    }


def png_image_md(png: bytes, alt: str) -> str:
    """A PNG as a markdown image with a data URI (shown inline in the UI's metadata)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def png_markdown(png: bytes, alt: str) -> MetadataValue:
    """A PNG shown inline in the UI's metadata."""
    return MetadataValue.md(png_image_md(png, alt))


def detect_and_store(frames: pl.DataFrame, scope: ChallengeScope, detector, object_store: ObjectStore,
                     config: FacesConfig, log) -> tuple[list[dict], list[dict], list]:
    """Face rows, rows of the frames without a face, and a sample of context crops, with every crop stored.

    Frames are decoded and their crops cut, aligned, encoded and stored on a thread pool while the
    detector runs on the next chunk (:func:`~tiktokfer_assets.vision.pipeline.pipelined`; on CPU one
    chunk per core at once).
    """
    from tiktokfer_assets.vision.upright import redetect_sideways

    def store_faces(frame: dict, image, detections: list) -> list[tuple[dict, object]]:
        found = []
        for rank, detection in enumerate(detections):
            crop, aligned, roll, aligned_roll = face_crops(image, detection, config.margin)
            keys = (scope.face_key(frame["frame_id"], rank), scope.aligned_key(frame["frame_id"], rank))
            for key, picture in zip(keys, (crop, aligned)):
                object_store.put_bytes(key, encode_jpeg(picture, config.jpeg_quality))
            found.append((face_row(frame, rank, detection, keys, (roll, aligned_roll)), crop))
        return found

    face_rows, noface_rows, sample = [], [], []
    ordered = frames.sort("frame_id").to_dicts()
    chunk = max(config.chunk_frames, detector.batch_size)  # the device always gets full batches
    with model_parallelism(detector.device) as parallel:
        stages = pipelined(
            ordered,
            lambda frame: decode_image(object_store.get_bytes(frame["object_key"])),
            lambda images: redetect_sideways(detector, images, detector.detect(images)),
            store_faces,
            chunk,
            parallel,
        )
        for done, (frame, found) in enumerate(zip(ordered, stages), 1):
            if not found:
                noface_rows.append({k: frame[k] for k in NOFACE_COLUMNS})
            for rank, (row, crop) in enumerate(found):
                face_rows.append(row)
                if len(sample) < config.contact_sheet_faces and rank == 0 and len(face_rows) % 3 == 1:
                    sample.append(crop)
            if done % chunk == 0 or done == len(ordered):
                log.info(f"{scope.name}: {done}/{len(ordered)} frames, {len(face_rows)} faces")
    return face_rows, noface_rows, sample


@multi_asset(
    outs={
        "faces": AssetOut(io_manager_key="table_io_manager", kinds={"polars", "pytorch"}, description=(
            "One row per detected face: box, score, landmarks, rotation, upright and aligned crop keys, "
            "prompt label and expression.")),
        "nofaces": AssetOut(
            io_manager_key="table_io_manager", kinds={"polars"},
            description="Frames without any face, even after the 90-degree retries.",
        ),
    },
    partitions_def=challenge_partitions,
    group_name="frames_and_faces",
    pool=GPU_POOL,
    op_tags=GPU_OP_TAGS,
)
def faces(
    context: AssetExecutionContext,
    config: FacesConfig,
    frames: pl.DataFrame,
    object_store: ObjectStore,
    table_store: TableStore,
    gpu: GpuResource,
):
    scope = challenge_scope(context, table_store)
    challenge = scope.name
    if scope.definition.is_collection and not config.content_collections:
        yield from skipped_outputs(context, {"faces": "faces", "nofaces": "nofaces"}, FACES_NOT_ASKED)
        return
    from tiktokfer_assets.vision.detector import CPU_BATCH_SIZE, FaceDetector

    weights = require_file(RETINAFACE_WEIGHTS)
    detector = gpu.model(
        f"retinaface:{config.score_threshold}:{config.max_size}",
        lambda device, batch_size: FaceDetector(
            weights, device, min(batch_size, CPU_BATCH_SIZE) if device == "cpu" else batch_size,
            config.score_threshold, max_size=config.max_size,
        ),
    )
    context.log.info(
        f"{challenge}: detecting faces in {frames.height} frames on {detector.device} (batch {detector.batch_size})"
    )
    face_rows, noface_rows, sample = detect_and_store(frames, scope, detector, object_store, config, context.log)
    table = conform("faces", face_rows).sort("face_id")
    nofaces_table = conform("nofaces", noface_rows).sort("frame_id")
    removed = object_store.delete_prefix(scope.prefix(FACES), keep=set(table["object_key"]))
    removed += object_store.delete_prefix(scope.prefix(ALIGNED), keep=set(table["aligned_key"]))
    metadata = {
        "faces": table.height,
        "frames_with_faces": table["frame_id"].n_unique(),
        "frames_without_faces": nofaces_table.height,
        "found_by_rotation": int((table["rotation"] != 0).sum()),
        "device": str(detector.device),
        "stale_objects_removed": removed,
    }
    if sample:
        sheet = contact_sheet(sample)
        sheet_key = scope.report_key("faces_contact_sheet.png")
        object_store.put_bytes(sheet_key, sheet)
        metadata["contact_sheet"] = png_markdown(sheet, "contact sheet")
        metadata["contact_sheet_uri"] = MetadataValue.path(object_store.uri(sheet_key))
    yield Output(table, "faces", metadata=metadata)
    yield Output(nofaces_table, "nofaces", metadata={"frames": nofaces_table.height})
