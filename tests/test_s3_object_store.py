"""The S3 object store against a real S3 server (SeaweedFS on loopback): keys, multipart, errors."""

from __future__ import annotations

import hashlib
import os
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from dagster import EnvVar, build_init_resource_context
from dagster_aws.s3 import S3Resource

from support.ports import free_ports
from support.seaweedfs import seaweedfs
from tiktokfer_assets.resources.object_store import ObjectStoreError
from tiktokfer_assets.resources.s3_object_store import S3ObjectStore

pytestmark = pytest.mark.s3

BUCKET = "tiktokfer-tests"


@pytest.fixture(scope="module")
def server():
    with seaweedfs() as running:
        yield running


def s3(server, **overrides) -> S3Resource:
    settings = {
        "endpoint_url": server.endpoint_url, "region_name": "us-east-1",
        "aws_access_key_id": server.access_key, "aws_secret_access_key": server.secret_key,
    }
    return S3Resource(**{**settings, **overrides})


@pytest.fixture
def store(server) -> S3ObjectStore:
    return S3ObjectStore(s3=s3(server), bucket=BUCKET, prefix=f"t-{uuid.uuid4().hex[:8]}/")


def raw_keys(server, prefix: str) -> list[str]:
    response = server.client().list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(obj["Key"] for obj in response.get("Contents", []))


def test_objects_round_trip_under_the_prefix(store, server, tmp_path):
    video = tmp_path / "video.mp4"
    video.write_bytes(b"\x00\x01video bytes" * 1000)
    store.put_file("videos/demo/v01/video.mp4", video)
    store.put_bytes("frames/demo/v01/000500.jpg", b"jpeg")
    store.put_bytes("frames/other/v01/000500.jpg", b"other challenge")

    assert store.get_bytes("frames/demo/v01/000500.jpg") == b"jpeg"
    assert store.exists("videos/demo/v01/video.mp4") and not store.exists("videos/demo/v02/video.mp4")
    assert store.list_keys("frames/demo/") == ["frames/demo/v01/000500.jpg"]
    assert store.list_keys("") == [
        "frames/demo/v01/000500.jpg", "frames/other/v01/000500.jpg", "videos/demo/v01/video.mp4",
    ]
    prefix = store.prefix.strip("/")
    assert raw_keys(server, prefix + "/") == [f"{prefix}/{key}" for key in store.list_keys("")]
    assert store.uri("videos/demo/v01/video.mp4") == f"s3://{BUCKET}/{prefix}/videos/demo/v01/video.mp4"
    assert store.download("videos/demo/v01/video.mp4", tmp_path / "back.mp4").read_bytes() == video.read_bytes()

    store.delete("frames/demo/v01/000500.jpg")
    store.delete("frames/demo/v01/000500.jpg")  # deleting a missing object is not an error
    assert store.list_keys("frames/") == ["frames/other/v01/000500.jpg"]


def test_large_files_go_up_in_parts_and_come_down_intact(server, tmp_path):
    store = S3ObjectStore(
        s3=s3(server), bucket=BUCKET, prefix="multipart", multipart_threshold_mb=5, multipart_chunksize_mb=5
    )
    big = tmp_path / "big.mp4"
    big.write_bytes(os.urandom(12 * 1024 * 1024 + 123))  # 3 parts of at most 5 MiB
    store.put_file("videos/demo/big/video.mp4", big)

    head = server.client().head_object(Bucket=BUCKET, Key="multipart/videos/demo/big/video.mp4")
    assert head["ContentLength"] == big.stat().st_size
    assert head["ETag"].strip('"').endswith("-3")  # S3 marks a multipart object's ETag with its part count
    back = store.download("videos/demo/big/video.mp4", tmp_path / "back.mp4")
    assert hashlib.sha256(back.read_bytes()).hexdigest() == hashlib.sha256(big.read_bytes()).hexdigest()

    small = S3ObjectStore(s3=s3(server), bucket=BUCKET, prefix="multipart")  # 64 MiB threshold: one PUT
    small.put_file("videos/demo/big/single.mp4", big)
    head = server.client().head_object(Bucket=BUCKET, Key="multipart/videos/demo/big/single.mp4")
    assert "-" not in head["ETag"].strip('"')


def test_delete_prefix_spares_kept_keys_and_other_prefixes(server):
    store = S3ObjectStore(s3=s3(server), bucket=BUCKET, prefix=f"t-{uuid.uuid4().hex[:8]}", delete_batch=100)
    keys = [f"frames/demo/v{i // 100:02d}/{i:06d}.jpg" for i in range(230)]  # three delete batches
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: store.put_bytes(key, b"x"), keys))
    store.put_bytes("frames/demo2/v00/000000.jpg", b"y")
    keep = set(keys[::7])

    assert store.delete_prefix("frames/demo/", keep=keep) == len(keys) - len(keep)
    assert set(store.list_keys("frames/demo/")) == keep
    assert store.list_keys("frames/demo2/") == ["frames/demo2/v00/000000.jpg"]


def test_missing_objects_and_bad_keys_are_clear_errors(store, tmp_path):
    with pytest.raises(ObjectStoreError, match="object 'videos/demo/nope.mp4' not found in s3://"):
        store.get_bytes("videos/demo/nope.mp4")
    with pytest.raises(ObjectStoreError, match="not found"):
        store.download("videos/demo/nope.mp4", tmp_path / "nope.mp4")
    with pytest.raises(ObjectStoreError, match="invalid object key"):
        store.put_bytes("../escape", b"x")


def test_bucket_is_created_at_start(server):
    bucket = f"tiktokfer-new-{uuid.uuid4().hex[:8]}"
    store = S3ObjectStore(s3=s3(server), bucket=bucket)
    store.setup_for_execution(build_init_resource_context())
    assert bucket in {b["Name"] for b in server.client().list_buckets()["Buckets"]}


def test_missing_bucket_is_an_error_when_creating_is_off(server):
    store = S3ObjectStore(s3=s3(server), bucket="tiktokfer-absent", create_bucket=False)
    with pytest.raises(ObjectStoreError) as error:
        store.setup_for_execution(build_init_resource_context())
    message = str(error.value)
    assert f"S3 at {server.endpoint_url}" in message and "'tiktokfer-absent' does not exist" in message


def test_wrong_credentials_are_named_without_the_secret(server):
    secret = f"wrong-{uuid.uuid4().hex}"
    store = S3ObjectStore(s3=s3(server, aws_secret_access_key=secret), bucket=BUCKET)
    with pytest.raises(ObjectStoreError) as error:
        store.setup_for_execution(build_init_resource_context())
    message = str(error.value)
    assert f"S3 at {server.endpoint_url}" in message
    assert "credentials were refused" in message and "AWS_SECRET_ACCESS_KEY" in message
    assert secret not in "".join(traceback.format_exception(error.value))  # the whole chain, as Dagster logs it


def test_unreachable_server_is_named(tmp_path):
    (port,) = free_ports(1)
    endpoint = f"http://127.0.0.1:{port}"
    store = S3ObjectStore(s3=S3Resource(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="k",
                                        aws_secret_access_key="s", max_attempts=1), bucket=BUCKET)
    with pytest.raises(ObjectStoreError, match=f"S3 at {endpoint}: cannot open the bucket .*did not answer"):
        store.list_keys("")


def test_env_var_settings_resolve_outside_a_run(server, monkeypatch):
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    store = S3ObjectStore(
        s3=S3Resource(endpoint_url=EnvVar("TIKTOKFER_S3_ENDPOINT"), region_name="us-east-1",
                      aws_access_key_id=EnvVar("AWS_ACCESS_KEY_ID"),
                      aws_secret_access_key=EnvVar("AWS_SECRET_ACCESS_KEY")),
        bucket=BUCKET, prefix="env",
    )
    store.put_bytes("videos/demo/v01/video.mp4", b"v")
    assert store.get_bytes("videos/demo/v01/video.mp4") == b"v"
    assert store.location() == f"s3://{BUCKET}/env at {server.endpoint_url}"
