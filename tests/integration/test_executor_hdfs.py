"""executor/hdfs.py against the stack's real HDFS: atomic writes, streamed and ranged reads
with size checks, one error type naming the remote exception and the path."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from executor import hdfs as edge
from executor.hdfs import Hdfs, HdfsError


@pytest.fixture(scope="module")
def fs(stack: dict) -> Hdfs:
    return Hdfs(str(stack["webhdfs"]), "alice")


@pytest.fixture
def base(fs: Hdfs) -> Iterator[str]:
    path = f"/clusterjobs-tests/edge-{uuid.uuid4().hex[:12]}"
    fs.makedirs(path)
    yield path
    fs.delete(path, recursive=True)


def test_write_bytes_is_renamed_into_place(fs: Hdfs, base: str) -> None:
    fs.write_bytes(f"{base}/a/spec.json", b'{"x": 1}')
    assert fs.read_bytes(f"{base}/a/spec.json") == b'{"x": 1}'
    assert fs.list(f"{base}/a") == ["spec.json"]  # no temporary name left behind


def test_write_bytes_never_overwrites(fs: Hdfs, base: str) -> None:
    fs.write_bytes(f"{base}/spec.json", b"first")
    with pytest.raises(HdfsError) as caught:
        fs.write_bytes(f"{base}/spec.json", b"second")
    assert caught.value.exception == "FileAlreadyExistsException"
    assert fs.read_bytes(f"{base}/spec.json") == b"first"
    assert fs.list(base) == ["spec.json"]


def test_missing_file_names_exception_and_path(fs: Hdfs, base: str, tmp_path: Path) -> None:
    with pytest.raises(HdfsError) as caught:
        fs.download(f"{base}/nope.bin", tmp_path / "nope.bin")
    err = caught.value
    assert err.exception == "FileNotFoundException"
    assert err.path == f"{base}/nope.bin"
    assert f"{base}/nope.bin" in str(err) and "\n" not in str(err)
    with pytest.raises(HdfsError) as caught:
        fs.read_bytes(f"{base}/nope.bin")
    assert caught.value.exception == "FileNotFoundException"


def test_download_in_ranges_is_byte_identical(fs: Hdfs, base: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom(5 * (1 << 20) + 12345)
    source = tmp_path / "src.bin"
    source.write_bytes(data)
    fs.upload_tree(f"{base}/in", [(source, "data.bin")])
    monkeypatch.setattr(edge, "RANGE_SIZE", 1 << 20)  # 6 ranges on parallel connections
    size = fs.download(f"{base}/in/data.bin", tmp_path / "got.bin")
    assert size == len(data)
    assert (tmp_path / "got.bin").read_bytes() == data
    with pytest.raises(HdfsError) as caught:
        fs.download(f"{base}/in/data.bin", tmp_path / "x.bin", expect_size=len(data) - 1)
    assert caught.value.exception == "SizeMismatch"


def test_empty_file(fs: Hdfs, base: str, tmp_path: Path) -> None:
    fs.write_bytes(f"{base}/empty", b"")
    assert fs.download(f"{base}/empty", tmp_path / "e") == 0
    assert (tmp_path / "e").read_bytes() == b""


def test_upload_tree_is_all_or_nothing(fs: Hdfs, base: str, tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_bytes(b"fine")
    with pytest.raises(HdfsError):
        fs.upload_tree(f"{base}/out/0", [(good, "good.txt"), (tmp_path / "gone", "gone")])
    assert fs.list(f"{base}/out") == []  # no half folder, no temporary left
    paths = fs.upload_tree(f"{base}/out/0", [(good, "good.txt"), (good, "sub/again.txt")])
    assert paths == [f"{base}/out/0/good.txt", f"{base}/out/0/sub/again.txt"]
    assert fs.read_bytes(f"{base}/out/0/sub/again.txt") == b"fine"


def test_upload_tree_moves_an_earlier_result_aside(fs: Hdfs, base: str, tmp_path: Path) -> None:
    first, second = tmp_path / "1", tmp_path / "2"
    first.write_bytes(b"one")
    second.write_bytes(b"two")
    fs.upload_tree(f"{base}/out/0", [(first, "r")])
    fs.upload_tree(f"{base}/out/0", [(second, "r")])
    assert fs.read_bytes(f"{base}/out/0/r") == b"two"
    names = fs.list(f"{base}/out")
    assert len(names) == 2 and names[0] == "0" and names[1].startswith("0.replaced-")
    assert fs.read_bytes(f"{base}/out/{names[1]}/r") == b"one"


def test_unreachable_namenode_is_one_error(tmp_path: Path) -> None:
    fs = Hdfs("http://127.0.0.1:9", "alice", timeout=2)
    with pytest.raises(HdfsError) as caught:
        fs.status("/x")
    assert caught.value.exception == "ConnectionError"
    assert caught.value.path == "/x"


def test_download_can_be_cancelled(fs: Hdfs, base: str, tmp_path: Path) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(os.urandom(3 * (1 << 20)))
    fs.upload_tree(f"{base}/in", [(source, "data.bin")])
    asked = []

    def cancelled() -> bool:
        asked.append(1)
        return len(asked) > 1  # let the first chunk through, then stop

    with pytest.raises(HdfsError) as caught:
        fs.download(f"{base}/in/data.bin", tmp_path / "got.bin", cancelled=cancelled)
    assert caught.value.exception == "Cancelled"
    assert len(asked) == 2  # not retried
