"""The S3 artifact store against a real S3-compatible HTTP server (moto's, on localhost)."""

from __future__ import annotations

import hashlib
import io
import logging
import random
import socket
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import boto3
import pytest
from moto.server import ThreadedMotoServer

from driftline.codec import decode, encode
from driftline.datasets import drifting_stream
from driftline.errors import ConfigError, DriftlineError, StoreUnavailable
from driftline.events import ModelVersion
from driftline.models import RetrainSpec, RetrainStage
from driftline.models.artifact import ArtifactError
from driftline.pipeline import JoinStage
from driftline.sdk import ModelSubscriber
from driftline.settings import ModelsSettings, Settings
from driftline.streams.artifact_s3 import S3ArtifactStore
from driftline.streams.artifacts import LocalArtifactStore, open_store
from driftline.streams.replay import replay
from driftline.streams.retrain import Retraining
from driftline.streams.transaction import Restart

KEY = "test-signing-key-0123456789abcdef"
SECRET = "dummy-secret-never-to-be-seen"


@dataclass(frozen=True)
class Bucket:
    """A fresh bucket on the test server, and a plain boto3 client to look at it."""

    endpoint: str
    name: str
    client: Any

    def store(self, prefix: str = "") -> S3ArtifactStore:
        return S3ArtifactStore(self.name, prefix, endpoint_url=self.endpoint)

    def settings(self, prefix: str, **models: Any) -> ModelsSettings:
        location = f"s3://{self.name}/{prefix}"
        return ModelsSettings(artifact_dir=location, s3_endpoint_url=self.endpoint, **models)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """Dummy credentials in the environment, and nothing else boto3 could find or call."""
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "dummy-access-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-role lookup
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return monkeypatch


@pytest.fixture
def bucket(s3_endpoint: str, aws_env: pytest.MonkeyPatch) -> Bucket:
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    name = f"artifacts-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return Bucket(s3_endpoint, name, client)


def _versions(bucket: Bucket, key: str) -> int:
    listing = bucket.client.list_object_versions(Bucket=bucket.name, Prefix=key)
    return len(listing.get("Versions", []))


# -- the store ------------------------------------------------------------------------------------


def test_a_large_artifact_goes_in_under_its_digest_and_comes_back(bucket: Bucket) -> None:
    data = random.Random(1).randbytes((5 << 20) + 4321)
    sha256 = hashlib.sha256(data).hexdigest()
    uri = bucket.store("/models/v1/").put(data)
    key = f"models/v1/{sha256[:2]}/{sha256}.zlib"
    assert uri == f"s3://{bucket.name}/{key}"
    head = bucket.client.head_object(Bucket=bucket.name, Key=key)
    assert head["ContentLength"] == len(data)
    assert bucket.store("models/v1").get(uri) == data
    assert bucket.store().get(uri, max_bytes=len(data)) == data  # found at the named location


def test_put_is_idempotent_and_repairs_a_partial_object(bucket: Bucket) -> None:
    bucket.client.put_bucket_versioning(
        Bucket=bucket.name, VersioningConfiguration={"Status": "Enabled"}
    )
    store = bucket.store("p")
    data = b"model bytes" * 1000
    uri = store.put(data)
    key = uri.removeprefix(f"s3://{bucket.name}/")
    assert store.put(data) == uri
    assert _versions(bucket, key) == 1  # the second put wrote nothing

    bucket.client.put_object(Bucket=bucket.name, Key=key, Body=data[:100])  # a torn write
    assert store.put(data) == uri
    assert _versions(bucket, key) == 3
    assert store.get(uri) == data
    assert store.put(data + b"!") != uri


def test_a_missing_artifact_is_an_artifact_error_naming_where_it_looked(bucket: Bucket) -> None:
    store = bucket.store("p")
    missing = f"s3://{bucket.name}/p/ab/{'ab' * 32}.zlib"
    with pytest.raises(
        ArtifactError, match=rf"{missing} not found \(looked in s3://{bucket.name}/p\)"
    ):
        store.get(missing)
    with pytest.raises(ArtifactError, match="not found"):
        store.get("s3://no-such-bucket-here/x.zlib")


def test_an_artifact_over_max_bytes_is_refused_before_its_body_is_read(bucket: Bucket) -> None:
    store = bucket.store()
    uri = store.put(bytes(1000))
    with pytest.raises(ArtifactError, match="is 1000 bytes, over the limit of 999; not read"):
        store.get(uri, max_bytes=999)
    assert store.get(uri, max_bytes=1000) == bytes(1000)


def test_a_store_with_another_prefix_finds_the_digest_by_name(bucket: Bucket) -> None:
    data = b"trained elsewhere"
    uri = bucket.store("trainer").put(data)
    serving = bucket.store("serving")
    assert serving.get(uri) == data  # not in its prefix: read where the URI says

    sha256 = hashlib.sha256(data).hexdigest()
    copy = f"serving/{sha256[:2]}/{sha256}.zlib"
    bucket.client.put_object(Bucket=bucket.name, Key=copy, Body=data)
    bucket.client.delete_object(Bucket=bucket.name, Key=uri.removeprefix(f"s3://{bucket.name}/"))
    assert serving.get(uri) == data  # its own copy, under the same digest
    with pytest.raises(ArtifactError, match="not found"):
        bucket.store("trainer").get(uri)


def test_uris_of_another_scheme_are_refused(bucket: Bucket, tmp_path: Path) -> None:
    uri = LocalArtifactStore(tmp_path).put(b"local")
    with pytest.raises(ArtifactError, match=r"reads s3:// URIs only"):
        bucket.store().get(uri)


# -- what goes wrong, said in one line ------------------------------------------------------------


def test_no_credentials(s3_endpoint: str, aws_env: pytest.MonkeyPatch) -> None:
    aws_env.delenv("AWS_ACCESS_KEY_ID")
    aws_env.delenv("AWS_SECRET_ACCESS_KEY")
    store = S3ArtifactStore("artifacts", endpoint_url=s3_endpoint)
    with pytest.raises(ArtifactError, match=r"no AWS credentials .*AWS_ACCESS_KEY_ID") as caught:
        store.get("s3://artifacts/x.zlib")
    assert "\n" not in str(caught.value)
    with pytest.raises(DriftlineError, match="no AWS credentials"):
        store.put(b"x")


def test_an_unreachable_endpoint(aws_env: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{probe.getsockname()[1]}"
    store = S3ArtifactStore("artifacts", endpoint_url=endpoint)
    with pytest.raises(StoreUnavailable, match=f"cannot reach {endpoint} .*models.s3_endpoint_url"):
        store.get("s3://artifacts/x.zlib")


class _Guarded(BaseHTTPRequestHandler):
    """An S3 endpoint that denies everything but reads of ``READABLE``, as S3 does for a
    policy that grants s3:GetObject on those keys only (no s3:ListBucket: a missing key is 403).
    """

    READABLE: ClassVar[dict[str, bytes]] = {}

    def _answer(self, body: bytes | None) -> None:
        status = 200 if body is not None else 403
        if body is None:
            body = b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self._answer(self.READABLE.get(self.path))

    def do_GET(self) -> None:
        self._answer(self.READABLE.get(self.path))

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer(None)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A local HTTP server with ``handler`` while the generator runs; its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


@pytest.fixture
def guarded_endpoint() -> Iterator[str]:
    yield from _serve(_Guarded)
    _Guarded.READABLE.clear()


def test_access_denied_without_showing_the_credentials(
    guarded_endpoint: str, aws_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="driftline")
    store = S3ArtifactStore("artifacts", "p", endpoint_url=guarded_endpoint)
    uri = f"s3://artifacts/p/ab/{'ab' * 32}.zlib"
    with pytest.raises(ArtifactError, match=f"access denied to {uri}: allow") as read:
        store.get(uri)
    with pytest.raises(DriftlineError, match="access denied to s3://artifacts/p/") as written:
        store.put(b"x")
    for text in (str(read.value), str(written.value), caplog.text):
        assert SECRET not in text and "dummy-access-key" not in text


def test_a_denied_own_copy_still_reads_the_named_one(
    guarded_endpoint: str, aws_env: pytest.MonkeyPatch
) -> None:
    data = b"readable where the trainer put it"
    sha256 = hashlib.sha256(data).hexdigest()
    key = f"trainer/{sha256[:2]}/{sha256}.zlib"
    _Guarded.READABLE[f"/artifacts/{key}"] = data
    store = S3ArtifactStore("artifacts", "serving", endpoint_url=guarded_endpoint)
    assert store.get(f"s3://artifacts/{key}") == data


def test_without_boto3_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'driftline\[s3\]'"):
        open_store(ModelsSettings(artifact_dir="s3://ml-models/driftline"))


# -- choosing the store, and the product's path through it ----------------------------------------


def test_open_store_chooses_the_backend_from_artifact_dir(
    tmp_path: Path, aws_env: pytest.MonkeyPatch
) -> None:
    aws_env.setenv("DRIFTLINE_MODELS_ARTIFACT_DIR", "s3://ml-models/driftline/artifacts/")
    aws_env.setenv("DRIFTLINE_MODELS_S3_ENDPOINT_URL", "http://127.0.0.1:9")
    aws_env.setenv("DRIFTLINE_MODELS_S3_REGION", "eu-west-3")
    store = open_store(Settings.load().models)
    assert isinstance(store, S3ArtifactStore)
    assert (store.bucket, store.prefix, store.endpoint_url, store.region) == (
        "ml-models",
        "driftline/artifacts",
        "http://127.0.0.1:9",
        "eu-west-3",
    )
    assert store.root == "s3://ml-models/driftline/artifacts"

    local = open_store(ModelsSettings(artifact_dir=str(tmp_path / "store")))
    assert isinstance(local, LocalArtifactStore) and local.root == tmp_path / "store"
    with pytest.raises(ConfigError, match="names no bucket"):
        open_store(ModelsSettings(artifact_dir="s3:///prefix"))
    assert ModelsSettings(artifact_dir="s3://b/p", s3_region="x").retrain_spec().min_events == 1000


def _replay_versions(
    models: ModelsSettings, tmp_path: Path, n: int = 3000, concept_at: int | None = None
) -> list[ModelVersion]:
    stream = drifting_stream(n, seed=4, shift_at=None, concept_at=concept_at)
    predictions, labels = tmp_path / "p.jsonl", tmp_path / "l.jsonl"
    predictions.write_bytes(b"".join(encode(e) + b"\n" for e in stream.predictions))
    labels.write_bytes(b"".join(encode(e) + b"\n" for e in stream.labels))
    out = io.BytesIO()
    replay(predictions, labels, io.BytesIO(), models_out=out, models=models)
    return [decode("model_version", line) for line in out.getvalue().splitlines()]


def test_versions_delivered_by_reference_to_s3_are_verified_and_served(
    bucket: Bucket, tmp_path: Path
) -> None:
    trainer = bucket.settings(
        "driftline", key=KEY, learner="logistic_regression", max_inline_bytes=0, refresh_every=0
    )
    versions = _replay_versions(trainer, tmp_path)  # driftline replay ... --models-out
    assert versions, "the replay published no model version"
    prefix = f"s3://{bucket.name}/driftline/"
    assert all(v.artifact is None and (v.artifact_uri or "").startswith(prefix) for v in versions)
    latest = versions[-1]

    settings = Settings.load(models=trainer.model_dump(mode="json") | {"key": KEY})
    subscriber = ModelSubscriber(settings, latest.model, start=False)
    assert isinstance(subscriber.store, S3ArtifactStore)
    assert subscriber.handle(encode(latest))
    assert subscriber.version == latest.version
    assert subscriber.predict_one({"x0": 2.0, "x2": 2.0}) == 1

    key = (latest.artifact_uri or "").removeprefix(f"s3://{bucket.name}/")
    bucket.client.put_object(Bucket=bucket.name, Key=key, Body=b"tampered with")
    tampered = ModelSubscriber(settings, latest.model, start=False)
    assert not tampered.handle(encode(latest))
    assert tampered.refused["unverified"] == 1 and tampered.version is None


# -- outages --------------------------------------------------------------------------------------


class _Overloaded(BaseHTTPRequestHandler):
    """An S3 endpoint that answers every request 503 SlowDown, as S3 does when throttling."""

    def _answer(self) -> None:
        body = b"<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>"
        self.send_response(503)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self._answer()

    def do_GET(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def overloaded_endpoint() -> Iterator[str]:
    yield from _serve(_Overloaded)


def _closed_port() -> str:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.mark.parametrize("down", ["closed", "overloaded"])
def test_an_outage_is_store_unavailable(
    down: str, overloaded_endpoint: str, aws_env: pytest.MonkeyPatch
) -> None:
    endpoint = _closed_port() if down == "closed" else overloaded_endpoint
    store = S3ArtifactStore("artifacts", endpoint_url=endpoint)
    with pytest.raises(StoreUnavailable, match="artifacts") as raised:
        store.put(b"model bytes")
    assert SECRET not in str(raised.value)
    with pytest.raises(StoreUnavailable):  # reading too: a subscriber tries again later
        store.get("s3://artifacts/x.zlib")


def test_a_worker_restarts_while_the_store_is_down_and_publishes_once_it_is_back(
    bucket: Bucket,
) -> None:
    """A version by reference (the record limit is tiny) while S3 is unreachable: Restart,
    nothing produced; the same release once it answers: published, its artifact in the bucket."""
    models = {"key": KEY, "learner": "logistic_regression"}
    settings = Settings.load(
        models={
            **models,
            "artifact_dir": f"s3://{bucket.name}/v",
            "s3_endpoint_url": _closed_port(),
        },
        topics={"max_message_bytes": 1024},
    )
    retraining = Retraining(settings)
    stream = drifting_stream(600, seed=2, shift_at=None, concept_at=None)
    stage = RetrainStage(RetrainSpec(learner="logistic_regression", min_events=500), KEY.encode())
    join = JoinStage()
    releases = stage.push(join.push(stream.predictions, stream.labels) + join.flush())
    assert len(releases) == 1
    records: list[tuple[str, bytes, bytes | None]] = []
    with pytest.raises(Restart, match=r"version 1 not published: cannot reach"):
        retraining.publish(releases, lambda *record: records.append(record))
    assert records == []

    retraining.store = bucket.store("v")
    events = retraining.publish(releases, lambda *record: records.append(record))
    assert len(records) == 2 and events[0].artifact_uri is not None
    data = bucket.store("v").get(events[0].artifact_uri)
    assert hashlib.sha256(data).hexdigest() == events[0].sha256


def test_a_subscriber_tries_a_version_again_once_its_store_is_back(
    bucket: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store is down when the current version arrives: not refused, tried again after a
    growing delay, served once the store answers; a newer version supersedes the waiting one."""
    trainer = bucket.settings(
        "driftline", key=KEY, learner="logistic_regression", max_inline_bytes=0
    )
    versions = _replay_versions(trainer, tmp_path, n=8000, concept_at=3000)
    assert len(versions) >= 2, "the replay published fewer than two versions"
    settings = Settings.load(models=trainer.model_dump(mode="json") | {"key": KEY})
    down = S3ArtifactStore(bucket.name, "driftline", endpoint_url=_closed_port())
    subscriber = ModelSubscriber(settings, "demo", start=False, store=down)
    monkeypatch.setattr(ModelSubscriber, "RETRY_SECONDS", (1.0, 3.0))

    first = encode(versions[0])
    assert not subscriber.handle(first)
    assert subscriber.version is None and not subscriber.refused and subscriber.store_outages == 1
    assert not subscriber.retry()  # not yet: a second has not passed
    assert subscriber.store_outages == 1
    delays = []
    for _ in range(3):  # still down: 1 s, then 2, then 3 (the most)
        waiting = subscriber._waiting
        assert waiting is not None
        delays.append(waiting.delay)
        assert not subscriber.retry(now=waiting.due)
    assert delays == [1.0, 2.0, 3.0] and subscriber.store_outages == 4

    subscriber.store = bucket.store("driftline")  # the store is back
    assert subscriber.retry(now=float("inf"))
    assert subscriber.version == versions[0].version and subscriber._waiting is None
    assert not subscriber.retry(now=float("inf"))  # nothing waits any more

    # a newer version waits for the store, then one newer still arrives and loads: superseded
    subscriber.store = down
    assert not subscriber.handle(encode(versions[1])) and subscriber._waiting is not None
    subscriber.store = bucket.store("driftline")
    assert subscriber.handle(encode(versions[-1]))
    assert subscriber.version == versions[-1].version > versions[1].version
    assert subscriber._waiting is None
