"""The stack's HDFS through WebHDFS, as the scheduler and executor use it (HdfsCLI client).

Every test works under its own fresh folder, so the tests also pass against a reused stack
(CLUSTERJOBS_STACK) and in any order.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import hdfs
import pytest


@pytest.fixture(scope="module")
def client(stack: dict) -> hdfs.InsecureClient:
    return hdfs.InsecureClient(stack["webhdfs"])


@pytest.fixture
def base(client: hdfs.InsecureClient) -> Iterator[str]:
    """A folder of the test's own, removed afterwards."""
    path = f"/clusterjobs-tests/hdfs-{uuid.uuid4().hex[:12]}"
    client.makedirs(path)
    yield path
    client.delete(path, recursive=True)


def _read(client: hdfs.InsecureClient, path: str) -> bytes:
    with client.read(path) as reader:
        return reader.read()


def test_endpoints_are_loopback(stack: dict) -> None:
    assert stack["webhdfs"].startswith("http://127.0.0.1:")
    assert stack["hdfs"].startswith("hdfs://127.0.0.1:")


def test_write_then_read_back(client: hdfs.InsecureClient, base: str) -> None:
    path = f"{base}/spec.json"
    client.write(path, data=b'{"job": "j1", "cpus": 1}\n')
    assert _read(client, path) == b'{"job": "j1", "cpus": 1}\n'
    status = client.status(path)
    assert status["type"] == "FILE"
    assert status["length"] == len(b'{"job": "j1", "cpus": 1}\n')
    assert status["replication"] == 1


def test_list_folder(client: hdfs.InsecureClient, base: str) -> None:
    for name in ("b.json", "a.json", "c.error"):
        client.write(f"{base}/incoming/{name}", data=name.encode())
    client.makedirs(f"{base}/incoming/sub")
    assert client.list(f"{base}/incoming") == ["a.json", "b.json", "c.error", "sub"]
    kinds = {name: st["type"] for name, st in client.list(f"{base}/incoming", status=True)}
    assert kinds == {"a.json": "FILE", "b.json": "FILE", "c.error": "FILE", "sub": "DIRECTORY"}


def test_overwrite_replaces_and_refuses_without_flag(client: hdfs.InsecureClient,
                                                     base: str) -> None:
    path = f"{base}/out.txt"
    client.write(path, data=b"first version, longer than the second\n")
    with pytest.raises(hdfs.HdfsError):
        client.write(path, data=b"must not land")
    assert _read(client, path) == b"first version, longer than the second\n"
    client.write(path, data=b"second\n", overwrite=True)
    assert _read(client, path) == b"second\n"


def test_upload_and_download_local_file(client: hdfs.InsecureClient, base: str,
                                        tmp_path: Path) -> None:
    # A few MiB of random bytes: several WebHDFS packets, and no text-mode accident hides.
    payload = os.urandom(3 * 1024 * 1024 + 17)
    local = tmp_path / "input.bin"
    local.write_bytes(payload)
    remote = client.upload(f"{base}/inputs/input.bin", str(local))
    assert remote == f"{base}/inputs/input.bin"
    assert client.status(remote)["length"] == len(payload)
    back = tmp_path / "back.bin"
    client.download(remote, str(back))
    assert back.read_bytes() == payload


def test_rename_moves_file(client: hdfs.InsecureClient, base: str) -> None:
    src, dst = f"{base}/incoming/job.json", f"{base}/accepted/job.json"
    client.write(src, data=b"moved")
    client.makedirs(f"{base}/accepted")
    client.rename(src, dst)
    assert client.status(src, strict=False) is None
    assert _read(client, dst) == b"moved"
    assert client.list(f"{base}/incoming") == []


def test_delete_file_and_folder(client: hdfs.InsecureClient, base: str) -> None:
    path = f"{base}/gone/file.txt"
    client.write(path, data=b"x")
    assert client.delete(path) is True
    assert client.status(path, strict=False) is None
    assert client.delete(path) is False  # nothing left to delete
    client.write(f"{base}/tree/a/b.txt", data=b"y")
    with pytest.raises(hdfs.HdfsError):
        client.delete(f"{base}/tree")  # not empty, not recursive
    assert client.delete(f"{base}/tree", recursive=True) is True
    assert client.status(f"{base}/tree", strict=False) is None


def test_missing_path_raises_error_naming_it(client: hdfs.InsecureClient, base: str) -> None:
    missing = f"{base}/no-such-dir/no-such-file.json"
    with pytest.raises(hdfs.HdfsError) as info:
        client.status(missing)
    assert missing in str(info.value)
    with pytest.raises(hdfs.HdfsError) as info, client.read(missing) as reader:
        reader.read()
    assert missing in str(info.value)
