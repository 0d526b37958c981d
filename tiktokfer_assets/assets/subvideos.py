"""Asset 2, ``subvideos``: where each prompt is said in each video (and the span its label covers)."""

import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
from dagster import AssetExecutionContext, Config, MetadataValue, Output, asset

from tiktokfer_assets.assets.collection import skipped_outputs
from tiktokfer_assets.audio.decode import AudioDecodeError, NoAudioError, decode_audio
from tiktokfer_assets.audio.matching import (
    REASON_NO_AUDIO,
    WORK_RATE,
    PromptLocator,
    PromptMatch,
    PromptSpan,
    reaction_span,
    unmatched,
)
from tiktokfer_assets.challenges import ChallengeDefinition
from tiktokfer_assets.partitions import challenge_partitions
from tiktokfer_assets.resources.io_managers import markdown_preview
from tiktokfer_assets.resources.object_store import ObjectStore
from tiktokfer_assets.resources.table_store import TableStore
from tiktokfer_assets.scope import challenge_scope
from tiktokfer_assets.tables import conform


class SubvideosConfig(Config):
    sample_rate: int = WORK_RATE
    """Rate (Hz) every video's audio is decoded at, once, for all prompts (the matcher's own rate:
    no resampling after the decode)."""
    workers: int = 2
    """Videos decoded and matched at once (ffmpeg decoding runs outside the GIL)."""


def match_rows(video: dict, matches: list[PromptMatch], challenge: ChallengeDefinition) -> list[dict]:
    """``subvideos`` rows of one video: the prompt's span, and the span whose frames get its label."""
    window = challenge.reaction_window
    rows = []
    for match in matches:
        label_span = (match.start_s, match.end_s) if match.found else None
        if match.found and window is not None:
            label_span = reaction_span(match, (window.start_s, window.end_s), video["duration_s"])
        rows.append({
            "video_id": video["video_id"],
            "label": match.label,
            "prompt_index": match.prompt_index,
            "found": match.found,
            "start_s": match.start_s,
            "end_s": match.end_s,
            "score": match.score,
            "label_start_s": label_span[0] if label_span else None,
            "label_end_s": label_span[1] if label_span else None,
            "reason": match.reason,
            "rate": match.rate,
        })
    return rows


def baseline_matches(prompts: list[PromptSpan]) -> list[PromptMatch]:
    """The baseline's own prompts are where its definition says they are."""
    return [PromptMatch(p.label, i, True, p.start_s, p.end_s, 1.0, None, 1.0) for i, p in enumerate(prompts)]


@asset(
    partitions_def=challenge_partitions,
    io_manager_key="table_io_manager",
    kinds={"polars", "ffmpeg"},
    group_name="labels",
    description="Per video and prompt: where the prompt is said (start_s, end_s, NCC score) or why it was not found.",
)
def subvideos(
    context: AssetExecutionContext,
    config: SubvideosConfig,
    videos: pl.DataFrame,
    object_store: ObjectStore,
    table_store: TableStore,
):
    challenge = challenge_scope(context, table_store).definition
    if challenge.is_collection:
        yield from skipped_outputs(context, {"result": "subvideos"})
        return
    prompts = [PromptSpan(p.label, p.start_s, p.end_s) for p in challenge.prompts]
    baseline = videos.filter(pl.col("role") == "baseline").row(0, named=True)
    performances = videos.filter(pl.col("role") == "performance").sort("video_id").to_dicts()

    with tempfile.TemporaryDirectory(prefix="tiktokfer-subvideos-") as tmp:

        def audio_of(video: dict) -> tuple:
            local = Path(tmp) / f"{video['video_id']}{Path(video['object_key']).suffix}"
            object_store.download(video["object_key"], local)
            try:
                return decode_audio(local, config.sample_rate), None
            except NoAudioError:
                return None, REASON_NO_AUDIO
            except AudioDecodeError as exc:
                return None, f"audio decode failed: {exc}"
            finally:
                local.unlink(missing_ok=True)

        baseline_audio, problem = audio_of(baseline)
        if baseline_audio is None:
            raise RuntimeError(
                f"{challenge.name}: the baseline video has no usable audio ({problem}); prompts cannot be located"
            )
        locator = PromptLocator(baseline_audio, prompts, config.sample_rate)

        def locate(video: dict) -> list[dict]:
            audio, reason = audio_of(video)
            matches = unmatched(prompts, reason) if audio is None else locator.locate(audio)
            return match_rows(video, matches, challenge)

        with ThreadPoolExecutor(max_workers=config.workers) as pool:
            per_video = list(pool.map(locate, performances))

    rows = match_rows(baseline, baseline_matches(prompts), challenge)
    rows += [row for video_rows in per_video for row in video_rows]
    table = conform("subvideos", rows)
    found = int(table.filter(pl.col("video_id") != baseline["video_id"])["found"].sum() or 0)
    total = table.height - len(prompts)
    not_found = table.filter(~pl.col("found")).group_by("reason").len().sort("reason")
    context.log.info(f"{challenge.name}: {found} of {total} prompts found in {len(performances)} videos")
    yield Output(table, metadata={
        "prompts_found": found,
        "prompts_not_found": total - found,
        "not_found_by_reason": MetadataValue.md(markdown_preview(not_found)),
        "median_score_found": float(
            table.filter(pl.col("found") & (pl.col("video_id") != baseline["video_id"]))["score"].median() or 0.0
        ),
    })
