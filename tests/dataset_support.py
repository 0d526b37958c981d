"""Small stored worlds for the dataset export's tests: registered challenges whose unique_faces carry expressions.

Until part A of issue 11 lands, ``unique_faces`` rows are written here with the two
columns its contract adds (``expression``, ``aligned_key``). Aligned crops are real
photos of ../shared/media/expressions resized to 112x112 RGB JPEGs; embeddings are
planted: one random unit vector per person, plus noise per face.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from dagster import EnvVar
from PIL import Image
from upath import UPath

from tiktokfer_assets.challenges import parse_challenge
from tiktokfer_assets.paths import PROJECT_ROOT, media_dir
from tiktokfer_assets.tables import SCHEMAS, conform

EXPRESSIONS = ("happiness", "sadness", "surprise")
DIM = 256


@dataclass(frozen=True)
class Appearance:
    """``faces`` faces of planted ``person`` per expression, as individual ``individual`` of ``video``."""

    challenge: str
    video: str
    individual: str
    person: str
    faces: int = 2
    creator: bool = False
    expressions: tuple[str, ...] = EXPRESSIONS


def expression_photos() -> Path:
    """The labelled expression photos: fetched under media/ once the manifest lists them, else ../shared/media."""
    fetched = media_dir() / "expressions"
    return fetched if fetched.is_dir() else PROJECT_ROOT.parent / "shared" / "media" / "expressions"


def aligned_jpeg(expression: str, k: int) -> bytes:
    photos = sorted((expression_photos() / expression).glob("*.jpg"))
    with Image.open(photos[k % len(photos)]) as photo:
        buffer = io.BytesIO()
        photo.convert("RGB").resize((112, 112), Image.Resampling.BILINEAR).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def person_vector(person: str) -> np.ndarray:
    rng = np.random.default_rng(int(hashlib.sha1(person.encode()).hexdigest()[:8], 16))
    v = rng.standard_normal(DIM)
    return v / np.linalg.norm(v)


def resolved(options):
    """Storage options with the production resources' EnvVars read (outside a run nothing resolves them)."""
    if isinstance(options, dict):
        return {key: resolved(value) for key, value in options.items()}
    return options.get_value() if isinstance(options, EnvVar) else options


def stub_definition(challenge: str) -> str:
    """A challenge's definition (a baseline and a prompt per expression, not a content collection) as stored."""
    return parse_challenge({
        "name": challenge, "source": {"kind": "local_folder", "path": "/nonexistent/videos"},
        "baseline": {"path": "/nonexistent/baseline.mp4"},
        "prompts": [{"label": name, "start_s": 2 * k, "end_s": 2 * k + 1} for k, name in enumerate(EXPRESSIONS)],
    }).to_json()


def register_stub(store, instance, challenge: str) -> None:
    """A registered challenge (table row with its version, partition) with nothing materialised yet."""
    store.replace_partition("challenges", challenge, conform("challenges", [
        {"definition_json": stub_definition(challenge), "version": f"version-of-{challenge}",
         "registered_at": dt.datetime.now(dt.timezone.utc)}
    ]))
    instance.add_dynamic_partitions("challenge", [challenge])


def store_world(resources: dict, instance, appearances: list[Appearance], *, instruction_faces: int = 1
                ) -> pl.DataFrame:
    """Write the challenges, videos, unique_faces, embeddings and crops; returns face_id, challenge, person truth."""
    objects, store = resources["object_store"], resources["table_store"]
    rng = np.random.default_rng(0)
    truth, counter = [], 0
    for challenge in sorted({a.challenge for a in appearances}):
        mine = [a for a in appearances if a.challenge == challenge]
        faces, vectors = [], []
        for a in mine:
            labels = [e for e in a.expressions for _ in range(a.faces)]
            labels += [None] * instruction_faces
            for rank, expression in enumerate(labels):
                counter += 1
                face_id = f"{a.video}/{counter:06d}/{rank % 2}"
                key = f"faces/{challenge}/{face_id.replace('/', '_')}.jpg"
                aligned = f"aligned/{challenge}/{face_id.replace('/', '_')}.jpg"
                jpeg = aligned_jpeg(expression or "neutral", counter)
                objects.put_bytes(key, jpeg)
                objects.put_bytes(aligned, jpeg)
                faces.append({
                    "face_id": face_id, "individual_id": a.individual, "video_id": a.video, "track_id": f"{a.video}/t0",
                    "timestamp_s": counter * 0.5, "prompt_label": expression or "ready",
                    "score": 0.99, "sharpness": 100.0,
                    "object_key": key, "is_baseline_creator": a.creator, "duplicates": "[]",
                    "expression": expression, "aligned_key": aligned,
                })
                noisy = person_vector(a.person) + 0.15 * rng.standard_normal(DIM) / np.sqrt(DIM)
                vectors.append(noisy / np.linalg.norm(noisy))
                truth.append({"challenge": challenge, "face_id": face_id, "person": a.person, "expression": expression})
        schema = {**SCHEMAS["unique_faces"], "expression": pl.String, "aligned_key": pl.String}
        store.replace_partition("unique_faces", challenge, pl.DataFrame(faces, schema=schema))
        videos = sorted({a.video for a in mine})
        store.replace_partition("videos", challenge, conform("videos", [
            {"video_id": v, "role": "performance", "url": f"https://example.org/{challenge}/{v}", "author": f"@{v}"}
            for v in videos
        ]))
        register_stub(store, instance, challenge)
        embeddings = pl.DataFrame({
            "challenge": challenge, "face_id": [f["face_id"] for f in faces], "backend": "mobilefacenet",
            "embedding": pl.Series(np.asarray(vectors, dtype=np.float32).tolist(), dtype=pl.List(pl.Float32)),
        })
        parquet = resources["parquet_io_manager"]
        folder = UPath(parquet.base_path, **resolved(parquet.storage_options())) / "face_embeddings"
        path = folder / f"{challenge}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            embeddings.write_parquet(out)
    return pl.DataFrame(truth)
