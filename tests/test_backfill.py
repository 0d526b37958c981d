"""Backfills over two challenges, launched the two ways users launch them, executed by a real daemon.

`dagster dev` runs the webserver and the daemon on the project's workspace. The
first test launches an asset backfill through the webserver's GraphQL API, as the
UI's "Materialize" dialog does for a set of partitions; the daemon's backfill loop
turns it into runs. The second uses the CLI (`dagster job backfill`). Both must
end with one successful run per challenge and both challenges' rows stored.
"""

from __future__ import annotations

import re

import pytest

from automation_support import dagster_dev, small_challenge, wait_until, write_definition

pytestmark = [pytest.mark.browser, pytest.mark.media, pytest.mark.slow]

CHALLENGES = ["bf_a", "bf_b"]

LAUNCH_BACKFILL = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
  }
}
"""

BACKFILL_STATUS = """
query Status($id: String!) {
  partitionBackfillOrError(backfillId: $id) { __typename ... on PartitionBackfill { status numPartitions } }
}
"""

BACKFILL_RUNS = """
query Runs($id: String!) {
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
    ... on Runs { results { runId status jobName tags { key value } } }
  }
}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("backfill")
    generated = small_challenge(tmp / "small")
    with dagster_dev(tmp, tiktokfer_home=tmp / "home") as dev:
        files = [str(write_definition(generated, tmp / f"{name}.yaml", name=name, max_videos=1)) for name in CHALLENGES]
        added = dev.cli("tiktokfer", "challenge", "add", *files)
        assert added.returncode == 0, added.stdout + added.stderr
        yield dev


def backfill_runs(server, backfill_id: str) -> list[dict]:
    return server.graphql(BACKFILL_RUNS, {"id": backfill_id})["runsOrError"]["results"]


def finished_runs(server, backfill_id: str, count: int) -> list[dict] | None:
    runs = backfill_runs(server, backfill_id)
    done = len(runs) == count and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs)
    return runs if done else None


def partition_of(run: dict) -> str:
    return next(t["value"] for t in run["tags"] if t["key"] == "dagster/partition")


def test_asset_backfill_launched_like_the_ui(server):
    params = {"partitionNames": CHALLENGES, "assetSelection": [{"path": ["videos"]}, {"path": ["video_failures"]}]}
    launched = server.graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]

    def settled():
        backfill = server.graphql(BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        return backfill if backfill["status"] not in ("REQUESTED", "CANCELING", "FAILING") else None

    backfill = wait_until(settled, poll_s=2)
    assert backfill["status"] == "COMPLETED_SUCCESS", (backfill, server.log_tail())
    assert backfill["numPartitions"] == 2
    runs = backfill_runs(server, backfill_id)
    # one run per challenge (the default backfill policy), each successful
    assert sorted(partition_of(r) for r in runs) == CHALLENGES
    assert {r["status"] for r in runs} == {"SUCCESS"}
    for name in CHALLENGES:
        assert sorted(server.table_store().read("videos", [name])["video_id"]) == ["baseline", "v01"]


def test_job_backfill_from_the_cli(server):
    done = server.cli("dagster", "job", "backfill", "-w", "workspace.yaml", "-j", "ingest_videos",
                      "--partitions", ",".join(CHALLENGES), "--noprompt")
    assert done.returncode == 0, done.stdout + done.stderr
    backfill_id = re.search(r"Launched backfill job `([^`]+)`", done.stdout).group(1)

    runs = wait_until(lambda: finished_runs(server, backfill_id, len(CHALLENGES)), poll_s=2)
    assert sorted(partition_of(r) for r in runs) == CHALLENGES
    assert {r["jobName"] for r in runs} == {"ingest_videos"}
    assert {r["status"] for r in runs} == {"SUCCESS"}, server.log_tail()
