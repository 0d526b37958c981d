"""Fetching weights and media: sha256 verified, local folder as the source, one clear error per problem."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tiktokfer_assets import weights
from tiktokfer_assets.identity.embedders import MobileFaceNetEmbedder
from tiktokfer_assets.models import MOBILEFACENET_WEIGHTS, RETINAFACE_WEIGHTS
from tiktokfer_assets.paths import PROJECT_ROOT
from tiktokfer_assets.weights import ManifestEntry, WeightsError, fetch_entry, read_manifest, sha256_of


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKFER_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("TIKTOKFER_DATA_DIR", str(tmp_path / "data"))
    source = tmp_path / "source"
    (source / "weights").mkdir(parents=True)
    payload = source / "weights" / "model.bin"
    payload.write_bytes(b"weights" * 1000)
    return source, ManifestEntry("weights/model.bin", sha256_of(payload), "https://example.invalid/model.bin")


def test_manifest_lists_every_weight_with_a_hash():
    entries = {e.path: e for e in read_manifest()}
    assert {RETINAFACE_WEIGHTS, MOBILEFACENET_WEIGHTS} <= set(entries)
    for entry in entries.values():
        assert len(entry.sha256) == 64 and entry.url.startswith("https://")


def test_fetch_from_local_folder_verifies_and_is_idempotent(isolated, tmp_path):
    source, entry = isolated
    dest, fetched = fetch_entry(entry, str(source))
    assert fetched and dest == tmp_path / "weights" / "model.bin"
    assert sha256_of(dest) == entry.sha256
    assert fetch_entry(entry, str(source)) == (dest, False)  # already there: not copied again


def test_corrupt_source_is_refused_and_nothing_is_left(isolated, tmp_path):
    source, entry = isolated
    (source / "weights" / "model.bin").write_bytes(b"tampered")
    with pytest.raises(WeightsError, match=r"weights/model.bin: sha256 mismatch") as info:
        fetch_entry(entry, str(source))
    assert "fix the source folder" in str(info.value)
    assert not list((tmp_path / "weights").iterdir())


def test_corrupt_local_copy_is_replaced(isolated, tmp_path):
    source, entry = isolated
    dest, _ = fetch_entry(entry, str(source))
    dest.write_bytes(b"bit rot")
    assert fetch_entry(entry, str(source)) == (dest, True)
    assert sha256_of(dest) == entry.sha256


def test_missing_file_in_source_names_it_and_the_fix(isolated, tmp_path):
    _, entry = isolated
    with pytest.raises(WeightsError, match=r"weights/model.bin: not found in local source .*TIKTOKFER_FETCH_SOURCE"):
        fetch_entry(entry, str(tmp_path / "elsewhere"))


def test_unreachable_url_names_the_file_and_the_fix(isolated):
    _, entry = isolated
    failed = r"weights/model.bin: download from https://example.invalid/model.bin failed"
    with pytest.raises(WeightsError, match=failed):
        fetch_entry(entry, "")


def test_require_file_explains_how_to_fetch(monkeypatch, tmp_path):
    monkeypatch.setenv("TIKTOKFER_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsError, match="run `tiktokfer fetch`"):
        weights.require_file(RETINAFACE_WEIGHTS)


def test_manifest_matches_the_shared_checksums():
    """The project's manifest agrees with the SHA256SUMS published beside the weights."""
    sums = PROJECT_ROOT.parent / "shared" / "weights" / "SHA256SUMS"
    if not sums.is_file():
        pytest.skip("no ../shared beside this checkout")
    published = dict(reversed(line.split()) for line in sums.read_text().splitlines() if line.strip())
    entries = {e.path: e.sha256 for e in read_manifest()}
    for path, digest in published.items():
        assert entries[path] == digest


@pytest.fixture
def weights_copy(tmp_path, monkeypatch):
    """The real weights in a private folder, so a test may damage them."""
    for checkpoint in (RETINAFACE_WEIGHTS, MOBILEFACENET_WEIGHTS):
        shutil.copyfile(weights.destination_of(checkpoint), tmp_path / Path(checkpoint).name)
    monkeypatch.setenv("TIKTOKFER_WEIGHTS_DIR", str(tmp_path))
    return tmp_path


@pytest.mark.media
def test_damaged_weights_are_refused_when_a_run_loads_them(weights_copy):
    checkpoint = weights_copy / Path(MOBILEFACENET_WEIGHTS).name
    with checkpoint.open("r+b") as fh:  # 4 KiB of flipped bytes: torch would still load it
        fh.seek(200_000)
        block = fh.read(4096)
        fh.seek(200_000)
        fh.write(bytes(b ^ 0xFF for b in block))
    with pytest.raises(WeightsError, match=r"mobilefacenet_casia.ckpt is damaged .* run `tiktokfer fetch`"):
        MobileFaceNetEmbedder()
    retinaface = weights_copy / Path(RETINAFACE_WEIGHTS).name
    retinaface.write_bytes(retinaface.read_bytes()[:100_000])  # truncated
    with pytest.raises(WeightsError, match=r"retinaface_mobilenet0.25.pth is damaged .* run `tiktokfer fetch`"):
        weights.require_file(RETINAFACE_WEIGHTS)


@pytest.mark.media
def test_the_check_is_cached_by_size_and_mtime(weights_copy, monkeypatch):
    hashed = []
    monkeypatch.setattr(weights, "sha256_of", lambda path: hashed.append(path) or sha256_of(path))
    path = weights.require_file(RETINAFACE_WEIGHTS)
    assert weights.require_file(RETINAFACE_WEIGHTS) == path and hashed == [path]
    os.utime(path, ns=(0, 0))  # touched: hashed again
    weights.require_file(RETINAFACE_WEIGHTS)
    assert hashed == [path, path]
