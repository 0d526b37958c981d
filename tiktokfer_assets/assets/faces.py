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
from tiktokfer_assets.scope import ALIGNED, FACES, challenge_scope
from tiktokfer_assets.tables import conform
from tiktokfer_assets.vision.align import (
    ARCFACE_SIZE,
    TEMPLATE_ARCFACE_112,
    align_face,
    aligned_landmarks,
    roll_degrees,
)
from tiktokfer_assets.vision.crops import contact_sheet, decode_image, encode_jpeg, upright_crop
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
    chunk_frames: int = 256
    """Frames decoded and held in memory at once; the detector batches within a chunk."""
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
    from tiktokfer_assets.vision.detector import FaceDetector
    from tiktokfer_assets.vision.upright import redetect_sideways

    weights = require_file(RETINAFACE_WEIGHTS)
    detector = gpu.model(
        f"retinaface:{config.score_threshold}:{config.max_size}",
        lambda device, batch_size: FaceDetector(
            weights, device, batch_size, config.score_threshold, max_size=config.max_size
        ),
    )
    context.log.info(
        f"{challenge}: detecting faces in {frames.height} frames on {detector.device} (batch {detector.batch_size})"
    )
    face_rows, noface_rows, sample = [], [], []
    ordered = frames.sort("frame_id").to_dicts()
    for start in range(0, len(ordered), config.chunk_frames):
        chunk = ordered[start : start + config.chunk_frames]
        images = [decode_image(object_store.get_bytes(frame["object_key"])) for frame in chunk]
        found = redetect_sideways(detector, images, detector.detect(images))
        for frame, image, detections in zip(chunk, images, found):
            if not detections:
                noface_rows.append({k: frame[k] for k in NOFACE_COLUMNS})
            for rank, detection in enumerate(detections):
                crop, aligned, roll, aligned_roll = face_crops(image, detection, config.margin)
                keys = (scope.face_key(frame["frame_id"], rank), scope.aligned_key(frame["frame_id"], rank))
                for key, picture in zip(keys, (crop, aligned)):
                    object_store.put_bytes(key, encode_jpeg(picture, config.jpeg_quality))
                face_rows.append(face_row(frame, rank, detection, keys, (roll, aligned_roll)))
                if len(sample) < config.contact_sheet_faces and rank == 0 and len(face_rows) % 3 == 1:
                    sample.append(crop)
        context.log.info(
            f"{challenge}: {min(start + len(chunk), len(ordered))}/{len(ordered)} frames, {len(face_rows)} faces"
        )

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
