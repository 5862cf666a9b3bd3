"""cs336lm.atomic: all-or-nothing writes, no temp files left behind, and never a rename onto a special file."""

import os
import re
import stat

import pytest

from cs336lm.atomic import NotARegularFileError, atomic_path, atomic_write_text, move_into_place


def test_atomic_path_replaces_the_file_on_success(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.txt.") and tmp.name.endswith(".tmp")
        tmp.write_text("new")
        assert target.read_text() == "old"  # nothing visible until the block ends
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["out.txt"]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_atomic_path_failure_keeps_the_old_file_and_no_temp(tmp_path, error):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(error), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise error
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_path_failure_before_writing_creates_nothing(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(ValueError), atomic_path(target):
        raise ValueError
    assert os.listdir(tmp_path) == []


def test_concurrent_temps_of_one_path_differ(tmp_path):
    with atomic_path(tmp_path / "x") as a, atomic_path(tmp_path / "x") as b:
        assert a != b
        a.write_text("a")
        b.write_text("b")
    assert (tmp_path / "x").read_text() == "a"  # the outer block ends last
    assert os.listdir(tmp_path) == ["x"]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_permissions_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "out.txt", "héllo\n")
    finally:
        os.umask(old)
    assert (tmp_path / "out.txt").read_bytes() == "héllo\n".encode()
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o666 & ~umask


# Special files are tested through paths in tmp_path only (a FIFO, a symlink to /dev/null), so even a broken check
# could only replace the FIFO or the symlink there, never a device of the machine.

def special_destinations(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    null_link = tmp_path / "null"
    null_link.symlink_to(os.devnull)
    folder = tmp_path / "folder"
    folder.mkdir()
    return {"FIFO (named pipe)": fifo, "character device": null_link, "directory": folder}


def assert_untouched(tmp_path):
    assert stat.S_ISFIFO(os.lstat(tmp_path / "fifo").st_mode)
    assert os.readlink(tmp_path / "null") == os.devnull and stat.S_ISCHR(os.stat(tmp_path / "null").st_mode)
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
    assert (tmp_path / "folder").is_dir() and not any((tmp_path / "folder").iterdir())
    assert sorted(os.listdir(tmp_path)) == ["fifo", "folder", "null"], "a temp file was left behind"


@pytest.mark.parametrize("kind", ["FIFO (named pipe)", "character device", "directory"])
def test_special_files_are_refused_before_anything_is_written(tmp_path, kind):
    target = special_destinations(tmp_path)[kind]
    with pytest.raises(NotARegularFileError, match=rf"refusing to write {target}.*it is a {re.escape(kind)}, not a "
                                                   "regular file"):
        atomic_write_text(target, "data")
    assert_untouched(tmp_path)


def test_symlink_to_dev_null_names_its_target(tmp_path):
    with pytest.raises(NotARegularFileError, match=rf"\(a symlink to {os.devnull}\): it is a character device"):
        with atomic_path(special_destinations(tmp_path)["character device"]):
            pytest.fail("the block ran although the destination is a device")
    assert_untouched(tmp_path)


def test_destination_that_turns_special_while_writing_is_not_replaced(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(NotARegularFileError, match="FIFO"), atomic_path(target) as tmp:
        tmp.write_text("data")
        os.mkfifo(target)
    assert stat.S_ISFIFO(os.lstat(target).st_mode)
    assert os.listdir(tmp_path) == ["out"]


def test_move_into_place_refuses_special_files_and_keeps_the_source(tmp_path):
    destinations = special_destinations(tmp_path)
    source = tmp_path / "finished"
    source.write_text("data")
    for target in destinations.values():
        with pytest.raises(NotARegularFileError):
            move_into_place(source, target)
    source.rename(tmp_path / "kept")
    assert (tmp_path / "kept").read_text() == "data"
    (tmp_path / "kept").unlink()
    assert_untouched(tmp_path)


def test_symlink_to_a_regular_file_and_a_dangling_symlink_are_written(tmp_path):
    (tmp_path / "real").write_text("old")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    atomic_write_text(tmp_path / "link", "new")
    assert (tmp_path / "link").read_text() == "new"
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    atomic_write_text(tmp_path / "dangling", "new")
    assert (tmp_path / "dangling").read_text() == "new"


def test_training_refuses_a_special_file_as_an_output_before_it_trains(tmp_path):
    from cs336lm.training.train import train
    from tests.helpers import make_corpus, outputs, tiny_config

    paths = outputs(tmp_path / "run")
    paths["metrics_path"].parent.mkdir(parents=True)
    paths["metrics_path"].symlink_to(os.devnull)
    with pytest.raises(NotARegularFileError, match="metrics.jsonl .*a symlink to /dev/null"):
        train(tiny_config(), *make_corpus(tmp_path / "data"), **paths)
    assert os.readlink(paths["metrics_path"]) == os.devnull
    assert not (tmp_path / "run" / "progress").exists(), "nothing ran"
