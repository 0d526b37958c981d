"""The Dagster UI in a real browser: `dagster dev` on the project's workspace, headless Chromium on its pages.

Screenshots go to test-artifacts/ (asset_graph.png, videos_partitions*.png, dataset_gallery.png).
"""

from __future__ import annotations

import pytest
from dagster import DagsterInstance

from automation_support import Chromium, dagster_dev, small_challenge, wait_for_run
from dataset_support import Appearance, store_world
from tiktokfer_assets.environments import local_resources

pytestmark = [pytest.mark.browser, pytest.mark.media, pytest.mark.slow]

CORE_ASSETS = ["videos", "subvideos", "frames", "faces", "individuals", "unique_faces"]
REPOSITORY = "__repository__"  # the repository name Dagster gives a Definitions object
LOCATION = "tiktokfer_assets.definitions"  # workspace.yaml loads the module under its own name

LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ui")
    generated = small_challenge(tmp / "small")
    with dagster_dev(tmp, tiktokfer_home=tmp / "home") as dev:
        added = dev.cli("tiktokfer", "challenge", "add", str(generated.challenge_yaml))
        assert added.returncode == 0, added.stdout + added.stderr
        assert "small: registered" in added.stdout
        dev.graphql("mutation { setNuxSeen }")  # what the first-visit newsletter dialog's "Skip" records
        yield dev


@pytest.fixture
def browser(tmp_path):
    chromium = Chromium(tmp_path / "chromium-profile")
    yield chromium
    chromium.close()


def test_asset_graph_shows_the_core_assets(server, browser, artifacts_dir):
    browser.open(f"{server.url}/asset-groups")
    browser.wait_for_text("Global asset lineage", "ingest")
    browser.press("e", "KeyE", alt=True)  # the graph's "Expand all groups" shortcut (groups start collapsed)
    text = browser.wait_for_text(*CORE_ASSETS)
    browser.wait_for_stable("document.querySelectorAll('svg path').length")  # the lineage edges are drawn
    shot = browser.screenshot(artifacts_dir / "asset_graph.png")
    assert shot.stat().st_size > 20_000
    for asset in CORE_ASSETS:
        assert asset in text.splitlines(), asset


def test_challenge_partitions_are_shown(server, browser, artifacts_dir):
    browser.open(f"{server.url}/assets/videos?view=partitions")
    text = browser.wait_for_text("Missing (1)", "small")
    browser.screenshot(artifacts_dir / "videos_partitions.png")
    assert "Materialized (0)" in text


def test_materialise_one_partition_through_graphql(server, browser, artifacts_dir):
    params = {
        "selector": {
            "repositoryLocationName": LOCATION,
            "repositoryName": REPOSITORY,
            "jobName": "__ASSET_JOB",
            "assetSelection": [{"path": ["videos"]}, {"path": ["video_failures"]}],
        },
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": "small"}]},
    }
    launched = server.graphql(LAUNCH_RUN, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    assert wait_for_run(server, run_id) == "SUCCESS", server.log_tail()

    videos = server.table_store().read("videos", ["small"])
    assert sorted(videos["video_id"]) == ["baseline", "v01", "v02"]

    browser.open(f"{server.url}/assets/videos?view=partitions")
    browser.wait_for_text("Materialized (1)", "small")
    browser.screenshot(artifacts_dir / "videos_partitions_materialized.png")


@pytest.fixture(scope="module")
def exported(server, tmp_path_factory):
    """A dataset release of a small stored world, materialised by `tiktokfer export` on the server's instance."""
    with DagsterInstance.from_config(server.env["DAGSTER_HOME"]) as instance:
        store_world(local_resources(server.tiktokfer_home), instance, [
            Appearance("gallery", f"v{k}", f"i{k:04d}", f"P{k}") for k in range(3)
        ])
    done = server.cli("tiktokfer", "export", "gallery", "--out", str(tmp_path_factory.mktemp("release")))
    assert done.returncode == 0, done.stdout + done.stderr


def test_dataset_export_shows_its_gallery(server, exported, browser, artifacts_dir):
    browser.open(f"{server.url}/assets/dataset_export?view=events")
    browser.wait_for_text("release_id", "gallery", "counts")
    browser.evaluate("""[...document.querySelectorAll('button, a')].find(
        e => /markdown/i.test(e.innerText) && e.closest('tr')?.innerText.includes('gallery')).click()""")
    text = browser.wait_for_text("happiness: 6 faces", "sadness: 6 faces", "surprise: 6 faces")
    browser.wait_for_stable("[...document.images].filter(i => i.src.startsWith('data:image/png') && i.complete).length")
    shot = browser.screenshot(artifacts_dir / "dataset_gallery.png")
    assert shot.stat().st_size > 20_000 and text.count("3 persons") == 3
