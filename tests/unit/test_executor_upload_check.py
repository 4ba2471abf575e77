"""Pure parts of the executor's stage-out check (executor/hdfs.py): which folders one
LISTSTATUS each must cover, and which uploaded files did not land whole."""

from __future__ import annotations

from executor.hdfs import folders_of, size_mismatches


def test_top_level_files_need_one_listing() -> None:
    assert folders_of(["stdout", "stderr", "result.txt"]) == [""]


def test_each_nested_folder_is_listed_once() -> None:
    names = ["stdout", "out/a", "out/b", "out/deep/c", "logs/x"]
    assert folders_of(names) == ["", "logs", "out", "out/deep"]


def test_no_files_no_listing() -> None:
    assert folders_of([]) == []


def test_sizes_that_match_are_fine() -> None:
    assert size_mismatches({"stdout": 0, "out/a": 5}, {"stdout": 0, "out/a": 5}) == []


def test_short_and_missing_files_are_named_in_order() -> None:
    expected = {"stdout": 10, "stderr": 0, "out/a": 7}
    listed = {"stdout": 4, "out/a": 7}
    assert size_mismatches(expected, listed) == [("stderr", 0, None), ("stdout", 10, 4)]


def test_extra_listed_files_do_not_count() -> None:
    assert size_mismatches({"stdout": 1}, {"stdout": 1, ".other": 9}) == []
