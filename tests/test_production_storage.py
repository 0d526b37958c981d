"""Production mode end to end, on real servers: SeaweedFS (S3) on loopback and Postgres on 127.0.0.1:5432.

Every test materialises whatever ``ASSETS`` holds for the generated challenge, with the
resources ``TIKTOKFER_ENV=production`` selects and a Dagster instance loaded from the
project's dagster.yaml (run, event-log and schedule storage in Postgres). Each test
writes under its own S3 prefix and Postgres schema of one fresh database.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import psycopg
import pytest
import yaml
from botocore.exceptions import BotoCoreError, ClientError
from dagster import (
    AllPartitionMapping, AssetIn, AssetKey, DagsterInstance, Definitions, RunsFilter, StaticPartitionsDefinition, asset, materialize,
)
from dagster_k8s import K8sRunLauncher, k8s_job_executor
from dagster_k8s.job import get_user_defined_k8s_config
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from tiktokfer_assets.automation.jobs import ALL_ASSETS_JOB
from tiktokfer_assets.challenges import load_challenge
from tiktokfer_assets.definitions import ASSETS, build_definitions
from tiktokfer_assets.environments import production_resources, resources_for
from tiktokfer_assets.registry import register_challenge
from tiktokfer_assets.resources.parquet_io_manager import ParquetIOManager
from tiktokfer_assets.resources.table_store import with_partition
from tiktokfer_assets.tables import PARTITION_COLUMN, conform
from tiktokfer_assets.testkit.seaweedfs import SeaweedFS, free_ports, seaweedfs

PROJECT = Path(__file__).resolve().parent.parent
BUCKET = "tiktokfer-production-tests"
ASSET_KEYS = {key for assets_def in ASSETS for key in assets_def.keys}


# -- the stack -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3():
    with seaweedfs() as server:
        yield server


def production_env(server: SeaweedFS, database: str, name: str, **overrides: str) -> dict[str, str]:
    """What an operator exports for TIKTOKFER_ENV=production; ``name`` is this test's S3 prefix and Postgres schema."""
    return {
        "TIKTOKFER_ENV": "production",
        "TIKTOKFER_S3_BUCKET": BUCKET, "TIKTOKFER_S3_PREFIX": name, "TIKTOKFER_S3_REGION": "us-east-1",
        **server.env(),
        "TIKTOKFER_PG_HOST": "127.0.0.1", "TIKTOKFER_PG_PORT": "5432", "TIKTOKFER_PG_USER": "postgres",
        "TIKTOKFER_PG_DB": database, "TIKTOKFER_PG_SCHEMA": name,
        "DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": "5432", "DAGSTER_PG_USER": "postgres",
        "DAGSTER_PG_PASSWORD": "", "DAGSTER_PG_DB": database,
        **overrides,
    }


def dagster_home(folder: Path, config: Path = PROJECT / "dagster.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(config, folder / "dagster.yaml")
    return folder


@contextmanager
def production(env: dict[str, str], home: Path) -> Iterator[tuple[dict, DagsterInstance]]:
    """``env`` exported, DAGSTER_HOME = ``home`` with the project's dagster.yaml: the resources and the instance."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**env, "DAGSTER_HOME": str(dagster_home(home))}.items():
            patch.setenv(name, value)
        with DagsterInstance.get() as instance:
            yield resources_for(), instance


def register(generated, resources: dict, instance: DagsterInstance, name: str, **changes) -> None:
    """The generated challenge registered as partition ``name`` (with ``changes`` to its definition)."""
    challenge = load_challenge(generated.challenge_yaml).model_copy(update={"name": name, **changes})
    register_challenge(challenge, resources["table_store"], instance)


def run(resources: dict, instance: DagsterInstance, challenge: str):
    job = build_definitions(resources).resolve_job_def(ALL_ASSETS_JOB)  # the global job also holds the dataset group
    return job.execute_in_process(partition_key=challenge, instance=instance, raise_on_error=False)


def run_errors(instance: DagsterInstance, run_id: str) -> str:
    """Every message and error (with causes) in the run's event log, as people would read it."""
    texts = []
    for record in instance.all_logs(run_id):
        texts.append(record.message or "")
        error = getattr(getattr(record.dagster_event, "event_specific_data", None), "error", None)
        while error is not None:
            texts.append(f"{error.cls_name}: {error.message}")
            error = error.cause or error.context
    return "\n".join(texts)


# -- what a run left behind ------------------------------------------------------------------


@dataclass
class Stored:
    rows: dict[str, int]  # table -> rows of the partition in Postgres
    objects: set[str]  # object keys under the prefix with the challenge's name, the name replaced by <c>
    referenced: set[str]  # object keys the partition's rows carry, the same way


def normalised(key: str, challenge: str) -> str | None:
    parts = key.split("/")
    if challenge not in parts and f"{challenge}.parquet" not in parts:
        return None
    return "/".join("<c>" if p == challenge else "<c>.parquet" if p == f"{challenge}.parquet" else p for p in parts)


def stored(resources: dict, challenge: str, tables) -> Stored:
    store = resources["table_store"]
    rows, referenced = {}, set()
    for table in tables:
        df = store.read(table, [challenge])
        rows[table] = df.height
        for column in df.columns:
            if (column == "object_key" or column.endswith("_key")) and df.schema[column] == pl.String:
                referenced |= {normalised(key, challenge) for key in df[column].drop_nulls()}
    objects = {n for key in resources["object_store"].list_keys("") if (n := normalised(key, challenge))}
    return Stored(rows, objects, referenced)


def tables_written(instance: DagsterInstance, run_id: str) -> dict[str, int]:
    """table -> row count, as the table IO manager reported each materialisation of the run."""
    written = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is not None and event.event_type_value == "ASSET_MATERIALIZATION":
            metadata = event.event_specific_data.materialization.metadata
            if "table" in metadata:
                written[metadata["table"].value] = metadata["dagster/row_count"].value
    return written


def pg(database: str, query: str, params=()) -> list[tuple]:
    with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname=database) as conn:
        return conn.execute(query, params).fetchall()


@dataclass
class Run:
    run_id: str
    reported: dict[str, int]  # table -> rows, as the table IO manager reported them
    stored: Stored
    materializations: int
    materialized: set[AssetKey]
    parquet_paths: list[str]
    output: str  # what the CLI printed


def finished_run(resources: dict, instance: DagsterInstance, challenge: str, since: dt.datetime, output: str) -> Run:
    (record,) = instance.get_run_records(RunsFilter(tags={"dagster/partition": challenge}, created_after=since))
    reported = tables_written(instance, record.dagster_run.run_id)
    materializations = [
        r.dagster_event.event_specific_data.materialization for r in instance.all_logs(record.dagster_run.run_id)
        if r.dagster_event is not None and r.dagster_event.event_type_value == "ASSET_MATERIALIZATION"
    ]
    return Run(
        run_id=record.dagster_run.run_id,
        reported=reported,
        stored=stored(resources, challenge, reported),
        materializations=len(materializations),
        materialized={m.asset_key for m in materializations},
        parquet_paths=[m.metadata["path"].value for m in materializations if "path" in m.metadata],
        output=output,
    )


@dataclass
class Production:
    demo: Run  # the generated demo partition
    small: Run  # the same challenge capped to two videos, materialised at the same time
    overlap_s: float  # how long the two runs were in progress together
    bystander: pl.DataFrame  # rows of a third partition, written before
    bystander_after: pl.DataFrame
    bystander_object: bytes
    challenges: dict[str, set[str]]  # table -> the partitions it has rows for


BYSTANDER_KEY = "videos/bystander/b01/video.mp4"


@pytest.fixture(scope="module")
def production_runs(generated, s3, database, tmp_path_factory) -> Production:
    """Two partitions materialised at once by two `tiktokfer materialize` processes in production mode.

    ``demo`` is the whole generated challenge; ``small`` the same challenge capped to two
    videos. A third partition's rows and media are there before and must survive.
    """
    home = tmp_path_factory.mktemp("dagster-home")
    env = production_env(s3, database, "clean")
    with production(env, home) as (resources, instance):
        register(generated, resources, instance, "demo")
        register(generated, resources, instance, "small", max_videos=2)
        bystander = with_partition(conform("videos", [
            {"video_id": "b01", "role": "performance", "object_key": BYSTANDER_KEY, "size_bytes": 9},
        ]), "bystander")
        resources["table_store"].replace_partition("videos", "bystander", bystander)
        resources["object_store"].put_bytes(BYSTANDER_KEY, b"bystander")

        since = dt.datetime.now(dt.timezone.utc)
        processes = {
            name: subprocess.Popen([sys.executable, "-m", "tiktokfer_assets.cli", "materialize", name],
                                   env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for name in ("demo", "small")
        }
        outputs = {name: process.communicate()[0] for name, process in processes.items()}
        for name, process in processes.items():
            assert process.returncode == 0, f"tiktokfer materialize {name}:\n{outputs[name][-4000:]}"

        runs = {name: finished_run(resources, instance, name, since, outputs[name]) for name in processes}
        records = [instance.get_run_record_by_id(run.run_id) for run in runs.values()]
        store = resources["table_store"]
        return Production(
            demo=runs["demo"], small=runs["small"],
            overlap_s=min(r.end_time for r in records) - max(r.start_time for r in records),
            bystander=bystander,
            bystander_after=store.read("videos", ["bystander"]),
            bystander_object=resources["object_store"].get_bytes(BYSTANDER_KEY),
            challenges={table: set(store.read(table)[PARTITION_COLUMN]) for table in runs["demo"].reported},
        )


@pytest.fixture(scope="module")
def clean(production_runs) -> Run:
    return production_runs.demo


# -- the whole demo partition ------------------------------------------------------------------


def test_demo_partition_lands_in_postgres_and_s3(clean, generated, s3, database):
    assert clean.materialized == ASSET_KEYS
    assert clean.reported and clean.stored.rows == clean.reported
    for table, count in clean.reported.items():  # straight from Postgres, not through the store
        assert pg(database, f'SELECT count(*) FROM clean."{table}" WHERE challenge = %s', ["demo"]) == [(count,)], table

    videos = pl.DataFrame(pg(database, "SELECT video_id, role, object_key, size_bytes FROM clean.videos "
                                       "WHERE challenge = 'demo' ORDER BY video_id"), schema=["video_id", "role", "object_key", "size_bytes"], orient="row")
    good = sorted(v["video_id"] for v in generated.truth["videos"] if not v["corrupt"])
    assert videos.filter(pl.col("role") == "performance")["video_id"].to_list() == good
    client = s3.client()
    for row in videos.iter_rows(named=True):  # the media are in S3, under the prefix, whole
        head = client.head_object(Bucket=BUCKET, Key=f"clean/{row['object_key']}")
        assert head["ContentLength"] == row["size_bytes"]
    assert clean.stored.referenced <= clean.stored.objects
    for path in clean.parquet_paths:  # array outputs: Parquet files on S3
        assert path.startswith(f"s3://{BUCKET}/clean/parquet/") and path.endswith("/demo.parquet")
        client.head_object(Bucket=BUCKET, Key=path.removeprefix(f"s3://{BUCKET}/"))


def test_the_run_is_recorded_in_postgres(clean, s3, database, tmp_path):
    (status,) = pg(database, "SELECT status FROM runs WHERE run_id = %s", [clean.run_id])
    assert status == ("SUCCESS",)
    materializations = pg(database, "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = %s",
                          [clean.run_id, "ASSET_MATERIALIZATION"])
    assert materializations == [(clean.materializations,)]
    with production(production_env(s3, database, "clean"), tmp_path) as (_, instance):
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert instance.get_run_by_id(clean.run_id).is_success
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 8
        assert instance.event_log_storage.get_concurrency_info("gpu").limit == 1


# -- faults ----------------------------------------------------------------------------------------


def stop_when_objects_appear(server: SeaweedFS, prefix: str, stopped: threading.Event, done: threading.Event, errors: list):
    """Kill the server the moment the first object under ``prefix`` exists (a crash in the middle of an asset)."""
    client = server.client()
    try:
        while not done.is_set():
            if client.list_objects_v2(Bucket=BUCKET, Prefix=prefix, MaxKeys=1).get("KeyCount", 0):
                server.kill()
                stopped.set()
                return
            done.wait(0.02)
    except (BotoCoreError, ClientError) as exc:
        errors.append(exc)


def test_s3_outage_in_the_middle_of_an_asset_then_a_clean_rerun(clean, generated, database, tmp_path):
    # the later asset that writes many objects: frames when the pipeline has it
    kind = "frames" if AssetKey("frames") in ASSET_KEYS else "videos"
    with seaweedfs(tmp_path / "s3") as server:
        env = production_env(server, database, "fault", TIKTOKFER_S3_MAX_ATTEMPTS="2")
        server.client().create_bucket(Bucket=BUCKET)  # for the watcher; the store would create it at start
        with production(env, tmp_path / "home") as (resources, instance):
            register(generated, resources, instance, "demo")
            stopped, done, errors = threading.Event(), threading.Event(), []
            watcher = threading.Thread(target=stop_when_objects_appear,
                                       args=(server, f"fault/{kind}/demo/", stopped, done, errors))
            watcher.start()
            try:
                failed = run(resources, instance, "demo")
            finally:
                done.set()
                watcher.join()
            assert errors == [] and stopped.is_set(), "the server was not stopped during the run"
            assert not failed.success
            assert failed.get_step_failure_events()[0].step_key == kind
            assert f"S3 at {server.endpoint_url}" in run_errors(instance, failed.run_id)

            server.start()
            rerun = run(resources, instance, "demo")
            assert rerun.success
            after = stored(resources, "demo", clean.reported)
    assert after.rows == clean.stored.rows
    assert after.objects == clean.stored.objects  # nothing left over from the broken run
    assert after.referenced <= after.objects


def test_postgres_connection_refused_is_a_clear_error(s3, database, tmp_path):
    (port,) = free_ports(1)
    with production(production_env(s3, database, "refused", TIKTOKFER_PG_PORT=str(port)), tmp_path) as (resources, instance):
        instance.add_dynamic_partitions("challenge", ["demo"])
        result = run(resources, instance, "demo")
        errors = run_errors(instance, result.run_id)
    assert not result.success
    assert f"cannot connect to Postgres at 127.0.0.1:{port} (database '{database}', user 'postgres')" in errors
    assert "Connection refused" in errors


def test_wrong_s3_credentials_are_a_clear_error_and_the_secret_is_never_logged(s3, database, tmp_path, capfd):
    secret = f"wrong-secret-{uuid.uuid4().hex}"
    env = production_env(s3, database, "creds", AWS_SECRET_ACCESS_KEY=secret)
    with production(env, tmp_path) as (resources, instance):
        instance.add_dynamic_partitions("challenge", ["demo"])
        result = run(resources, instance, "demo")
        errors = run_errors(instance, result.run_id)
    assert not result.success
    assert f"S3 at {s3.endpoint_url}" in errors and "credentials were refused" in errors
    stored_events = pg(database, "SELECT event FROM event_logs WHERE run_id = %s", [result.run_id])
    run_config = pg(database, "SELECT run_body FROM runs WHERE run_id = %s", [result.run_id])
    output = capfd.readouterr()
    everything = "\n".join([errors, output.out, output.err, json.dumps(stored_events), json.dumps(run_config)])
    assert len(stored_events) > 3 and secret not in everything and s3.secret_key not in everything


# -- two partitions at once --------------------------------------------------------------------------


def test_two_partitions_materialised_at_once_write_only_their_own_rows(production_runs):
    demo, small = production_runs.demo, production_runs.small
    assert production_runs.overlap_s > 0, "the two runs did not overlap"
    for run in (demo, small):  # each partition holds exactly what its own run wrote
        assert run.materialized == ASSET_KEYS and run.stored.rows == run.reported
        assert run.stored.referenced <= run.stored.objects
    assert small.reported["videos"] == 3  # the baseline and two performances
    assert demo.reported["videos"] > small.reported["videos"]
    assert production_runs.bystander_after.equals(production_runs.bystander)
    assert production_runs.bystander_object == b"bystander"
    for table, challenges in production_runs.challenges.items():
        assert challenges <= {"demo", "small", "bystander"}, table
    # the CLI ran on the production stores
    assert "Tables: Postgres postgres@127.0.0.1:5432/" in demo.output and f"s3://{BUCKET}/clean at http://127.0.0.1:" in demo.output


# -- Parquet on either store ---------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["local", "s3"])
def test_parquet_io_manager_is_the_same_class_on_a_folder_and_on_s3(where, s3, tmp_path, monkeypatch):
    parts = StaticPartitionsDefinition(["a", "b"])
    vectors = {"a": [[1.0, 0.0, 0.0, 0.5]], "b": [[0.0, 1.0, 0.25, 0.0], [0.5, 0.5, 0.5, 0.5]]}

    @asset(partitions_def=parts, io_manager_key="parquet_io_manager")
    def embeddings(context) -> pl.DataFrame:
        rows = vectors[context.partition_key]
        return pl.DataFrame({"face_id": [f"f{i}" for i in range(len(rows))],
                             "embedding": pl.Series(rows, dtype=pl.Array(pl.Float32, 4))})

    @asset(partitions_def=parts, ins={"embeddings": AssetIn(partition_mapping=AllPartitionMapping())})
    def norms(embeddings: pl.DataFrame) -> None:
        assert embeddings.schema["embedding"] == pl.Array(pl.Float32, 4)
        assert embeddings.select(PARTITION_COLUMN, "face_id").rows() == [("a", "f0"), ("b", "f0"), ("b", "f1")]
        assert embeddings["embedding"].to_list() == vectors["a"] + vectors["b"]

    if where == "s3":
        for name, value in s3.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("TIKTOKFER_S3_BUCKET", BUCKET)
        monkeypatch.setenv("TIKTOKFER_S3_PREFIX", "parquet-test")
        manager = production_resources()["parquet_io_manager"]
    else:
        manager = ParquetIOManager(base_path=str(tmp_path / "parquet"))
    resources = {"parquet_io_manager": manager}
    for key in ("a", "b"):
        result = materialize([embeddings], partition_key=key, resources=resources)
        assert result.asset_materializations_for_node("embeddings")[0].metadata["dagster/row_count"].value == len(vectors[key])
    assert materialize([embeddings, norms], selection=[norms], partition_key="a", resources=resources).success

    if where == "s3":
        keys = {o["Key"] for o in s3.client().list_objects_v2(Bucket=BUCKET, Prefix="parquet-test/")["Contents"]}
        assert keys == {"parquet-test/parquet/embeddings/a.parquet", "parquet-test/parquet/embeddings/b.parquet"}
    else:
        assert sorted(p.name for p in (tmp_path / "parquet" / "embeddings").iterdir()) == ["a.parquet", "b.parquet"]


# -- Kubernetes ----------------------------------------------------------------------------------------


def test_definitions_load_with_the_kubernetes_config(s3, database, tmp_path, monkeypatch):
    """deploy/k8s: the instance (K8sRunLauncher, S3 step logs), the k8s executor and the GPU assets' pod requests."""
    kubeconfig = tmp_path / "kubeconfig"  # stands in for the in-cluster config: nothing is contacted
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
        "users": [{"name": "test", "user": {"token": "t"}}],
    }))
    config = yaml.safe_load((PROJECT / "deploy/k8s/dagster.yaml").read_text())
    config["run_launcher"]["config"] |= {"load_incluster_config": False, "kubeconfig_file": str(kubeconfig)}
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    env = {**production_env(s3, database, "k8s"), "DAGSTER_HOME": str(home)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    # the code location loads in a fresh process, on that instance, as a code server would
    validate = subprocess.run([sys.executable, "-m", "dagster", "definitions", "validate", "-w", str(PROJECT / "workspace.yaml")],
                              cwd=PROJECT, env={**env, "PATH": str(Path(sys.executable).parent)}, capture_output=True, text=True)
    assert validate.returncode == 0, validate.stdout[-3000:] + validate.stderr[-3000:]

    with DagsterInstance.get() as instance:
        assert isinstance(instance.run_launcher, K8sRunLauncher)
        assert type(instance.compute_log_manager).__name__ == "S3ComputeLogManager"
        assert instance.event_log_storage.get_concurrency_info("gpu").limit == 1

    job = kubernetes_job()
    assert job.executor_def.name == "k8s" and set(job.asset_layer.executable_asset_keys) >= ASSET_KEYS


def kubernetes_job():
    """The project's assets on the production resources with dagster-k8s's executor configured by deploy/k8s/executor.yaml."""
    executor = k8s_job_executor.configured(yaml.safe_load((PROJECT / "deploy/k8s/executor.yaml").read_text()))
    return Definitions(assets=ASSETS, resources=production_resources(), executor=executor).resolve_implicit_global_asset_job_def()


def test_gpu_steps_ask_kubernetes_for_a_gpu(monkeypatch):
    """Every step in the `gpu` pool requests nvidia.com/gpu for its pod through its `dagster-k8s/config` tag."""
    monkeypatch.setenv("TIKTOKFER_S3_BUCKET", BUCKET)
    gpu_nodes = [node for node in kubernetes_job().graph.node_dict.values() if node.definition.pool == "gpu"]
    assert gpu_nodes, "no asset declares pool='gpu'"
    for node in gpu_nodes:
        limits = get_user_defined_k8s_config(node.tags).container_config.get("resources", {}).get("limits", {})
        assert int(limits.get("nvidia.com/gpu", 0)) >= 1, (
            f"{node.name}: pool='gpu' but its op_tags lack "
            '{"dagster-k8s/config": {"container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}}}}}'
        )


def test_helm_values_agree_with_the_instance_config():
    instance = yaml.safe_load((PROJECT / "deploy/k8s/dagster.yaml").read_text())
    values = yaml.safe_load((PROJECT / "deploy/k8s/values.yaml").read_text())
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["dagster-user-deployments"]["deployments"][0]["dagsterApiGrpcArgs"] == ["-m", "tiktokfer_assets.definitions"]
    runs, pools = values["concurrency"]["runs"], values["concurrency"]["pools"]
    assert runs["maxConcurrentRuns"] == instance["concurrency"]["runs"]["max_concurrent_runs"]
    assert [(l["key"], l["limit"]) for l in runs["tagConcurrencyLimits"]] == \
        [(l["key"], l["limit"]) for l in instance["concurrency"]["runs"]["tag_concurrency_limits"]]
    assert pools["defaultLimit"] == instance["concurrency"]["pools"]["default_limit"] == 1
    assert values["dagsterDaemon"]["runRetries"]["maxRetries"] == instance["run_retries"]["max_retries"]
    for launcher in (values["runLauncher"]["config"]["k8sRunLauncher"], instance["run_launcher"]["config"]):
        secrets = launcher.get("envSecrets") or [{"name": n} for n in launcher["env_secrets"]]
        assert [s["name"] for s in secrets] == ["tiktokfer-secrets"]
