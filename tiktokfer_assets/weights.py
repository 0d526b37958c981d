"""Fetch model weights and test media listed in ``weights/manifest.tsv``, verifying sha256.

Each manifest row is ``path<TAB>sha256<TAB>url``. ``weights/...`` rows land in
:func:`tiktokfer_assets.paths.weights_dir`, ``media/...`` rows in :func:`~tiktokfer_assets.paths.media_dir`.

The source is the public URL, or a local directory laid out like the manifest paths
(``TIKTOKFER_FETCH_SOURCE`` or ``--source``), which is how machines without internet
(CI, the demo here) get the same files. A file already present with the right hash is
not fetched again; a file whose hash differs is refused and never left in place.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tiktokfer_assets.paths import PROJECT_ROOT, media_dir, weights_dir

MANIFEST = PROJECT_ROOT / "weights" / "manifest.tsv"


class WeightsError(RuntimeError):
    """A manifest file could not be fetched or failed verification."""


@dataclass(frozen=True)
class ManifestEntry:
    path: str
    sha256: str
    url: str

    @property
    def destination(self) -> Path:
        return destination_of(self.path)


def destination_of(manifest_path: str) -> Path:
    """Where the manifest file ``manifest_path`` lands on this machine (not verified: see :func:`require_file`)."""
    top, _, rest = manifest_path.partition("/")
    if top == "weights":
        return weights_dir() / rest
    if top == "media":
        return media_dir() / rest
    raise WeightsError(f"manifest path {manifest_path!r} must start with weights/ or media/")


def read_manifest(path: Path = MANIFEST) -> list[ManifestEntry]:
    entries = []
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise WeightsError(f"{path}:{line_no}: expected 3 tab-separated fields, got {len(fields)}")
        entries.append(ManifestEntry(*fields))
    return entries


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_from_source(entry: ManifestEntry, source: str, tmp: Path) -> None:
    if source.startswith(("http://", "https://")):
        url = source.rstrip("/") + "/" + entry.path
    elif source:
        local = Path(source).expanduser() / entry.path
        if not local.is_file():
            raise WeightsError(
                f"{entry.path}: not found in local source {local.parent}. "
                f"Point TIKTOKFER_FETCH_SOURCE (or --source) at a folder holding {entry.path}."
            )
        shutil.copyfile(local, tmp)
        return
    else:
        url = entry.url
    try:
        with urllib.request.urlopen(url, timeout=60) as response, tmp.open("wb") as out:
            shutil.copyfileobj(response, out)
    except OSError as exc:
        raise WeightsError(
            f"{entry.path}: download from {url} failed ({exc}). Without internet, set "
            f"TIKTOKFER_FETCH_SOURCE to a local folder holding {entry.path}."
        ) from exc


def fetch_entry(entry: ManifestEntry, source: str = "") -> tuple[Path, bool]:
    """Fetch one file; returns its destination and whether it was (re)fetched."""
    dest = entry.destination
    if dest.is_file() and sha256_of(dest) == entry.sha256:
        return dest, False
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _copy_from_source(entry, source, tmp)
        actual = sha256_of(tmp)
        if actual != entry.sha256:
            raise WeightsError(
                f"{entry.path}: sha256 mismatch (expected {entry.sha256}, got {actual}). "
                "The source holds a different file; fetch it from the manifest URL or fix the source folder."
            )
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest, True


def fetch_weights(source: str | None = None, only: str | None = None) -> list[tuple[Path, bool]]:
    """Fetch every manifest entry (or those whose path starts with ``only``)."""
    source = os.environ.get("TIKTOKFER_FETCH_SOURCE", "") if source is None else source
    return [fetch_entry(e, source) for e in read_manifest() if only is None or e.path.startswith(only)]


# (size, mtime) of each file that last matched its manifest sha256 in this process
_VERIFIED: dict[Path, tuple[int, int]] = {}


def require_file(manifest_path: str) -> Path:
    """Destination of a manifest file, verified against its sha256, or one clear error naming it and the fix.

    A run loads every model through here, so a truncated or altered checkpoint (one that
    would still load and give wrong answers) is refused. The hash is computed once per
    process while the file keeps its size and modification time (about 20 ms for the
    1.7 MB RetinaFace weights).
    """
    for entry in read_manifest():
        if entry.path == manifest_path:
            dest = entry.destination
            if not dest.is_file():
                raise WeightsError(f"{dest} is missing: run `tiktokfer fetch` (it verifies {entry.path} by sha256).")
            stat = dest.stat()
            stamp = (stat.st_size, stat.st_mtime_ns)
            if _VERIFIED.get(dest) != stamp:
                if sha256_of(dest) != entry.sha256:
                    raise WeightsError(f"{dest} is damaged (truncated or altered: its sha256 is not the manifest's for "
                                     f"{entry.path}): run `tiktokfer fetch` to fetch it again.")
                _VERIFIED[dest] = stamp
            return dest
    raise WeightsError(f"{manifest_path} is not in {MANIFEST}")
