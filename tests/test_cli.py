"""The ``tiktokfer`` command: plain-text help, one-line user errors (exit 2) and failed runs (exit 1), status.

The fast tests run the command on a fresh home (``home``: TIKTOKFER_HOME and DAGSTER_HOME in
a temporary folder); the slow ones read the session's materialised generated challenge
(``pipeline``) or fail a run of a challenge whose one performance video is not a video.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import instance_for_test

from tiktokfer_assets import cli, definitions
from tiktokfer_assets.challenges import load_challenge
from tiktokfer_assets.definitions import build_definitions
from tiktokfer_assets.environments import local_resources
from tiktokfer_assets.paths import PROJECT_ROOT
from tiktokfer_assets.registry import register_challenge
from tiktokfer_assets.status import NOT_A_PARTITION

SHIPPED = PROJECT_ROOT / "challenges" / "face_challenge.yaml"
RST = ("``", ":func:", ":class:", ":mod:", ":data:", ":meth:")


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh local home for the command: nothing registered, no Dagster instance yet."""
    monkeypatch.setenv("TIKTOKFER_ENV", "local")
    monkeypatch.setenv("TIKTOKFER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    return tmp_path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``tiktokfer argv`` in this process."""
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse: --help and usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1, err
    return err


def parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from parsers(sub)


def test_help_is_plain_text_for_every_command_argument_and_option():
    every = list(parsers(cli.build_parser()))
    assert {p.prog for p in every} >= {"tiktokfer status", "tiktokfer challenge list", "tiktokfer challenge add"}
    for parser in every:
        text = parser.format_help()
        assert not [mark for mark in RST if mark in text], (parser.prog, text)
        assert parser.description, parser.prog
        for action in parser._actions:
            assert action.help, f"{parser.prog}: {action.dest} has no help"


@pytest.mark.parametrize("argv, hint", [
    (["bogus"], "tiktokfer --help"),
    (["challenge"], "tiktokfer challenge --help"),
    (["generate", "out", "--seed", "x"], "tiktokfer generate --help"),
])
def test_usage_errors_are_one_line_and_exit_2(capsys, argv, hint):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert hint in one_error_line(err)


def test_user_errors_are_one_line_and_exit_2(home, capsys):
    bad_yaml = home / "bad.yaml"
    bad_yaml.write_text("name: [unclosed\nsource: x\n")
    (home / "a_file").write_text("")
    cases = {
        ("status", "nope"): "challenge 'nope' is not registered",
        ("materialize", "nope"): "challenge 'nope' is not registered",
        ("challenge", "show", "nope"): "challenge 'nope' is not registered",
        ("challenge", "add", str(home / "missing.yaml")): "missing.yaml",
        ("challenge", "add", str(bad_yaml)): "bad.yaml is not valid YAML",
        ("generate", str(home / "a_file" / "out")): str(home / "a_file"),
        ("predict", str(home / "missing.jpg")): "missing.jpg: no such file",
    }
    for argv, expected in cases.items():
        code, out, err = run(capsys, *argv)
        assert (code, out) == (2, ""), (argv, out, err)
        assert expected in one_error_line(err), (argv, err)


def test_a_malformed_dagster_instance_is_one_line(home, capsys):
    with instance_for_test() as elsewhere:
        register_challenge(load_challenge(SHIPPED), cli.table_store(), elsewhere)
    (home / "dagster").mkdir()
    (home / "dagster" / "dagster.yaml").write_text("storage: [unclosed\n")
    code, _, err = run(capsys, "materialize", "face_challenge")
    assert code == 2 and "cannot open the Dagster instance in DAGSTER_HOME=" in one_error_line(err)


@pytest.mark.parametrize("env, expected", [
    ({"TIKTOKFER_ENV": "staging"}, "TIKTOKFER_ENV='staging': expected one of"),
    ({"TIKTOKFER_ENV": "production"}, "needs TIKTOKFER_S3_BUCKET"),
    # nothing listens on port 1: Postgres is unreachable, the error names the server
    ({"TIKTOKFER_ENV": "production", "TIKTOKFER_S3_BUCKET": "b", "TIKTOKFER_PG_PORT": "1"},
     "cannot connect to Postgres at 127.0.0.1:1"),
])
def test_environment_and_unreachable_postgres_are_one_line(home, capsys, monkeypatch, env, expected):
    monkeypatch.delenv("TIKTOKFER_S3_BUCKET", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, _, err = run(capsys, "status")
    assert code == 2 and expected in one_error_line(err)


@pytest.mark.slow  # predict imports torch and the model code before it reaches S3: seconds
def test_unreachable_s3_is_one_line(home, capsys, monkeypatch):
    for name, value in {"TIKTOKFER_ENV": "production", "TIKTOKFER_S3_BUCKET": "b", "TIKTOKFER_S3_MAX_ATTEMPTS": "1",
                        "TIKTOKFER_S3_ENDPOINT": "http://127.0.0.1:1", "AWS_ACCESS_KEY_ID": "k",
                        "AWS_SECRET_ACCESS_KEY": "s"}.items():
        monkeypatch.setenv(name, value)
    face = home / "face.jpg"
    face.write_bytes(b"not read before the model")
    code, _, err = run(capsys, "predict", str(face), "--model", "models/r/d")
    assert code == 2 and "S3 at http://127.0.0.1:1" in one_error_line(err)


def test_a_fresh_home_has_nothing_registered_and_reading_it_creates_nothing(home, capsys):
    nothing = cli.NO_CHALLENGES.format(location=f"DuckDB file {(home / 'home' / 'tables.duckdb').resolve()}")
    for argv in (["status"], ["challenge", "list"]):
        assert run(capsys, *argv) == (0, nothing + "\n", "")
    code, out, err = run(capsys, "status", "face_challenge")
    assert (code, out) == (2, "") and "challenge 'face_challenge' is not registered" in one_error_line(err)
    assert list(home.iterdir()) == []  # no TIKTOKFER_HOME, tables.duckdb or DAGSTER_HOME

    (home / "dagster").mkdir()  # a DAGSTER_HOME made ready by hand, still empty: left empty
    assert run(capsys, "status") == (0, nothing + "\n", "")
    assert list((home / "dagster").iterdir()) == []


def test_status_and_list_of_a_registered_challenge_before_any_run(home, capsys):
    register_challenge(load_challenge(SHIPPED), cli.table_store(), cli.dagster_instance())
    code, out, _ = run(capsys, "status", "face_challenge")
    lines = out.splitlines()
    assert code == 0 and lines[0] == "Challenge 'face_challenge': registered"
    assets = {line.split()[0]: line.split()[1:] for line in lines[3:] if line and not line.startswith("Last")}
    assert {"videos", "video_failures", "frames", "faces", "face_embeddings", "unique_faces"} <= set(assets)
    assert all(cells[0] == "missing" for cells in assets.values()), out
    assert assets["videos"] == ["missing", "0"] and assets["face_embeddings"] == ["missing"]  # not in the tables
    assert lines[-2:] == ["Last run: none", "Last failed run: none"]

    code, out, _ = run(capsys, "challenge", "list")
    header, rule, row = out.splitlines()
    assert header.split() == ["challenge", "version", "registered", "state"] and set(rule) == {"-", " "}
    assert row.split()[0] == "face_challenge" and row.split()[-1] == "registered"
    code, out, _ = run(capsys, "status")
    assert out.splitlines()[2].split()[:3] == ["face_challenge", "registered", f"0/{len(assets)}"]


def test_status_and_list_create_no_dagster_instance(home, capsys):
    with instance_for_test() as elsewhere:  # registered in the table store; DAGSTER_HOME was never opened
        register_challenge(load_challenge(SHIPPED), cli.table_store(), elsewhere)
    code, out, _ = run(capsys, "status", "face_challenge")
    assert code == 0 and out.splitlines()[1] == f"  {NOT_A_PARTITION}" and "Last run: none" in out
    assert run(capsys, "status")[1].splitlines()[2].split()[:2] == ["face_challenge", "no"]
    assert run(capsys, "challenge", "list")[1].splitlines()[2].endswith("no partition")
    assert not (home / "dagster").exists()


def test_a_challenge_missing_from_the_dagster_instance_is_one_line(home, capsys, monkeypatch):
    with instance_for_test() as elsewhere:  # registered with another instance: no partition in DAGSTER_HOME's
        register_challenge(load_challenge(SHIPPED), cli.table_store(), elsewhere)
    code, _, err = run(capsys, "materialize", "face_challenge")
    assert code == 2 and "is no partition of the Dagster instance in DAGSTER_HOME=" in one_error_line(err)
    assert run(capsys, "challenge", "list")[1].splitlines()[2].endswith("no partition")


@pytest.mark.slow  # a new process imports the code location: seconds
def test_the_command_prints_no_dagster_preview_warnings(home):
    # a new process: the code location's import is what warns (PreviewWarning of partitioned asset checks)
    done = subprocess.run([sys.executable, "-m", "tiktokfer_assets.cli", "materialize", "nope"],
                          capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: challenge 'nope' is not registered") and done.stderr.count("\n") == 1


# --- on materialised partitions --------------------------------------------------------------------------------


def status_rows(out: str) -> dict[str, str]:
    """The asset rows of ``tiktokfer status CHALLENGE``: asset -> its line."""
    lines = out.splitlines()
    return {line.split()[0]: line for line in lines[3:lines.index("")]}


def state_and_rows(line: str) -> list[str]:
    return line.split()[1:3]


@pytest.mark.media
@pytest.mark.slow
def test_status_of_the_materialised_generated_challenge(pipeline, capsys, monkeypatch):
    resources, instance, result = pipeline
    store = resources["table_store"]
    monkeypatch.setenv("TIKTOKFER_HOME", str(Path(store.path).parent))
    monkeypatch.setattr(cli, "dagster_instance", lambda **_: instance)
    code, out, err = run(capsys, "status", "demo")
    assert (code, err) == (0, "") and out.startswith("Challenge 'demo': materialised\n")
    rows = status_rows(out)
    assert set(rows) == {"videos", "video_failures", "subvideos", "frames", "contents", "faces", "nofaces",
                         "face_embeddings", "faces_with_intra_ind", "individuals", "similarities", "unique_faces"}
    short_run = result.run_id[:8]
    assert all(line.split()[1] == "materialised" and line.endswith(short_run) for line in rows.values()), out
    # rows as stored: the generated challenge's one undownloadable video, its 9 prompts never said
    assert state_and_rows(rows["videos"]) == ["materialised", "9"]
    assert rows["videos"].split()[2] == str(store.count("videos", "demo"))
    assert state_and_rows(rows["individuals"]) == ["materialised", str(store.count("faces_with_final_ind", "demo"))]
    assert "videos not ingested: 1" in rows["video_failures"] and "prompts not found: 9 of 48" in rows["subvideos"]
    assert " 2 passed " in rows["unique_faces"]  # its asset checks in the run
    assert out.splitlines()[-2].startswith(f"Last run: {short_run} success ")
    assert out.splitlines()[-1] == "Last failed run: none"
    code, out, _ = run(capsys, "status")
    assert out.splitlines()[2].split()[:3] == ["demo", "materialised", f"{len(rows)}/{len(rows)}"]


@pytest.fixture
def failed_run(generated, home, capsys, monkeypatch):
    """A challenge whose one performance video is not a video, registered and run through the command once."""
    folder = home / "broken"
    (folder / "videos").mkdir(parents=True)
    shutil.copy(generated.challenge_yaml.parent / "baseline.mp4", folder / "baseline.mp4")
    (folder / "videos" / "junk.mp4").write_text("not a video")
    text = generated.challenge_yaml.read_text().replace("name: demo", "name: broken", 1)
    (folder / "challenge.yaml").write_text(text)
    # the command's code location on this home (the module's was built on the environment at import)
    monkeypatch.setattr(definitions, "defs", build_definitions(local_resources(home / "home")))
    assert run(capsys, "challenge", "add", str(folder / "challenge.yaml"))[0] == 0
    return run(capsys, "materialize", "broken")


@pytest.mark.media
@pytest.mark.slow
def test_a_failed_run_is_one_line_naming_its_step_and_status_shows_it(failed_run, capsys):
    code, out, err = failed_run
    assert code == 1 and out == ""
    last = err.splitlines()[-1]  # after the run's own log
    assert last.startswith("error: run ")
    assert "failed: step videos failed: Failure: broken: none of the 1 videos could be ingested" in last
    code, out, _ = run(capsys, "status", "broken")
    rows = status_rows(out)
    assert out.startswith("Challenge 'broken': failed\n")
    assert state_and_rows(rows["videos"]) == ["failed", "0"]
    assert rows["subvideos"].split()[1] == rows["unique_faces"].split()[1] == "skipped"
    assert state_and_rows(rows["video_failures"]) == ["materialised", "1"]  # stored before the step failed
    assert out.splitlines()[-1].startswith("Last failed run: ") and "step videos failed: Failure:" in out
    assert run(capsys, "challenge", "list")[1].splitlines()[2].split()[-1] == "failed"
