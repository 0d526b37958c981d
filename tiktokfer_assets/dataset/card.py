"""The dataset card (the release's README.md) and the counts it and the UI show."""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from tiktokfer_assets.dataset.splits import SPLITS


def counts_table(manifest: pl.DataFrame) -> pl.DataFrame:
    """Faces per expression (rows) and split (columns), with totals; every split a column even when empty."""
    expressions = sorted(manifest["expression"].unique())
    counts = manifest.group_by("expression", "split").len()
    rows = []
    for expression in expressions:
        per_split = dict(counts.filter(pl.col("expression") == expression).select("split", "len").iter_rows())
        rows.append({"expression": expression, **{s: per_split.get(s, 0) for s in SPLITS},
                     "total": sum(per_split.values())})
    return pl.DataFrame(rows, schema={"expression": pl.String, **dict.fromkeys(SPLITS, pl.Int64), "total": pl.Int64})


def persons_per_split(manifest: pl.DataFrame) -> dict[str, dict[str, int]]:
    """split -> {"persons": n, "individuals": n, "faces": n}."""
    out = {}
    for split in SPLITS:
        rows = manifest.filter(pl.col("split") == split)
        out[split] = {"persons": rows["person_id"].n_unique(),
                      "individuals": rows.select("challenge", "individual_id").n_unique() if rows.height else 0,
                      "faces": rows.height}
    return out


def _markdown(df: pl.DataFrame) -> str:
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * df.width]
    return "\n".join(lines + ["| " + " | ".join(str(v) for v in row) + " |" for row in df.iter_rows()])


def dataset_card(
    release_id: str,
    manifest: pl.DataFrame,
    versions: Mapping[str, str],
    settings: Mapping,
    excluded: Mapping[str, int],
) -> str:
    """Markdown: counts per split x expression, persons and individuals per split, challenges, method, exclusions."""
    per_split = pl.DataFrame([{"split": s, **v} for s, v in persons_per_split(manifest).items()])
    challenges = pl.DataFrame({"challenge": list(versions), "version": list(versions.values())}).sort("challenge")
    left_out = "\n".join(f"- {reason}: {count} faces" for reason, count in excluded.items())
    ratios = "/".join(f"{r:g}" for r in settings["ratios"])
    return f"""# tiktokfer expression dataset, release {release_id}

Face crops from short-form video challenges, each labelled with the expression the
challenge's prompt asked for at that moment, split by person.

## Faces per split and expression

{_markdown(counts_table(manifest))}

## Persons per split

A person is never in two splits.

{_markdown(per_split)}

## Challenges

{_markdown(challenges)}

## How it was made

- Videos of each challenge were downloaded, the prompts located in their audio, frames
  sampled every 0.5 s, faces detected (RetinaFace MobileNet-0.25), tracked within each
  video and joined into individuals across the challenge's videos (MobileFaceNet embeddings).
- Near-duplicate crops were removed within each (individual, expression) (PHash).
- The label of a face is the expression its challenge maps the prompt to, for the frames
  in that prompt's window.
- Individuals of different challenges were linked into persons by their mean embeddings
  (the embedder's identity threshold); persons were split {ratios} (train/val/test),
  stratified by expression as far as whole persons allow. Persons of earlier releases keep their split.
- Images: `<split>/<expression>/<file>.jpg`, the 112x112 aligned crops (five-landmark
  similarity transform); `manifest.parquet` has one row per face with its person, source
  video and context crop; each split's `metadata.csv` is what `datasets.load_dataset("imagefolder", ...)` reads.

## What it excludes

{left_out}
- faces whose duplicates were kept instead (see `unique_faces.duplicates`)
- baseline creator excluded: {not settings["include_baseline_creator"]}

Load it with `datasets.load_dataset("imagefolder", data_dir=...)` or
`torchvision.datasets.ImageFolder("<release>/train")`.
"""


def release_summary(release_id: str, uri: str, manifest: pl.DataFrame) -> str:
    """A few lines for the terminal: where the release is, faces per expression and split, persons per split."""
    counts = counts_table(manifest)
    lines = [f"Dataset release {release_id}: {manifest.height} faces, {manifest['person_id'].n_unique()} persons",
             f"  at {uri}", "  " + "".join(f"{name:>12}" for name in counts.columns)]
    lines += ["  " + "".join(f"{value!s:>12}" for value in row) for row in counts.iter_rows()]
    persons = ", ".join(f"{split} {v['persons']}" for split, v in persons_per_split(manifest).items())
    return "\n".join(lines + [f"  persons per split: {persons}"])
