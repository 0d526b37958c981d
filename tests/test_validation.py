"""Validation gaps: every bad name, number, id, path and command gets one clear line and exit code 2."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import yaml

from tiktokfer_assets import cli
from tiktokfer_assets.challenges import ChallengeError, parse_challenge
from tiktokfer_assets.sources import base
from tiktokfer_assets.sources.url_list import read_url_list


def definition(**changes) -> dict:
    return {
        "name": "demo",
        "source": {"kind": "local_folder", "path": "/tmp/videos"},
        "baseline": {"path": "/tmp/baseline.mp4"},
        "prompts": [{"label": "kiss", "start_s": 1.0, "end_s": 2.0}],
        **changes,
    }


@pytest.mark.parametrize("changes", [
    {"name": "demo\n"},
    {"prompts": [{"label": "kiss", "start_s": 1.0, "end_s": math.nan}]},
    {"prompts": [{"label": "kiss", "start_s": 1.0, "end_s": math.inf}]},
    {"max_video_seconds": math.inf},
    {"baseline": {"path": "/tmp/baseline.mp4", "video_id": "../somefile"}},
    {"baseline": {"url": "https://example.org/b.mp4", "video_id": "a/b"}},
    {"baseline": {"path": "/tmp/baseline.mp4", "video_id": "ok\n"}},
])
def test_bad_values_are_refused(changes):
    with pytest.raises(ChallengeError):
        parse_challenge(definition(**changes))


def test_ids_and_paths_are_refused_outside_their_folder(tmp_path):
    for bad in ("../x", "a/b", "", "x\n", "a" * 129):
        with pytest.raises(ValueError, match="video id"):
            base.VideoRef(bad, "file:///x")
    (tmp_path / "inside").mkdir()
    (tmp_path / "inside" / "link.mp4").symlink_to(tmp_path / "outside.mp4")
    assert base.path_inside(tmp_path / "inside", "v1.mp4") == tmp_path / "inside" / "v1.mp4"
    for name in ("../outside.mp4", "link.mp4", "/etc/passwd", "."):
        with pytest.raises(ValueError, match="resolves outside"):
            base.path_inside(tmp_path / "inside", name)


def test_a_junk_line_of_a_url_list_is_one_failure_and_its_text_is_not_echoed(tmp_path):
    listed = tmp_path / "videos.txt"
    listed.write_text("SECRET-FIRST-LINE of some private file\nhttps://www.tiktok.com/@a/video/7290857393721888046\n")
    junk, good = read_url_list(listed)
    assert good.video_id == "7290857393721888046"
    assert junk.video_id == "line-1" and "invalid" in junk.info
    assert "SECRET" not in junk.info["invalid"] and "SECRET" not in junk.url and "line 1" in junk.info["invalid"]


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TIKTOKFER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return tmp_path


def one_line_error(argv, capsys) -> str:
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.media
@pytest.mark.slow
def test_challenge_add_refuses_missing_files_and_unreadable_baselines(home, generated, capsys):
    root = home / "c"
    shutil.copytree(generated.root, root)
    path = root / "challenge.yaml"
    good = yaml.safe_load(path.read_text())

    def add(**changes) -> str:
        path.write_text(yaml.safe_dump({**good, **changes}))
        return one_line_error(["challenge", "add", str(path)], capsys)

    missing = add(baseline={"path": "missing.mp4"})
    assert "baseline video" in missing and "does not exist" in missing
    assert "video folder" in add(source={"kind": "local_folder", "path": "nowhere"})
    (root / "text.mp4").write_text("not a video")
    assert "baseline video" in add(baseline={"path": "text.mp4"})


def test_materialize_of_an_unknown_challenge_is_one_line(home, capsys):
    assert "UNKNOWN" in one_line_error(["materialize", "UNKNOWN"], capsys)
