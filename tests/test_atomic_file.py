"""static_model.atomic_file: a single file is the old version or the new one, never a part; killed writers' temporaries
are cleared once abandoned."""

import os
import signal
import subprocess
import sys
import threading

import pytest

from static_model.atomic_file import (
    ABANDONED_AFTER_SECONDS,
    atomic_write,
    atomic_write_bytes,
    remove_abandoned_temporaries,
)

_KILLED_MID_WRITE = """
import sys, time
from static_model.atomic_file import atomic_write
def half_then_stall(handle):
    handle.write(b"new-" * 1000)
    handle.flush()
    print("stalled", flush=True)
    time.sleep(600)
atomic_write(sys.argv[1], half_then_stall)
"""


def _backdate(path, seconds):
    then = os.stat(path).st_mtime - seconds
    os.utime(path, (then, then))


def test_kill_9_mid_write_keeps_the_old_file_and_the_next_write_clears_the_temporary(tmp_path):
    target = tmp_path / "report.json"
    target.write_bytes(b"old")
    child = subprocess.Popen([sys.executable, "-c", _KILLED_MID_WRITE, str(target)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "stalled"
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert target.read_bytes() == b"old"
    (left,) = tmp_path.glob(".report.json.tmp-*")
    assert left.stat().st_size == 4000
    live = tmp_path / ".report.json.tmp-1-feedbeef"  # another writer's, being written now: kept
    live.write_bytes(b"partial")
    atomic_write_bytes(target, b"new")  # the killed writer's temporary is recent: kept too
    assert left.exists()
    _backdate(left, ABANDONED_AFTER_SECONDS + 1)
    atomic_write_bytes(target, b"newer")
    assert target.read_bytes() == b"newer"
    assert sorted(tmp_path.iterdir()) == [live, target]


def test_a_write_that_fails_leaves_the_target_as_it_was_and_no_temporary(tmp_path):
    target = tmp_path / "part-00000.parquet"
    target.write_bytes(b"old")

    def disk_full(handle):
        handle.write(b"partial")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, disk_full)
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]


def test_parents_are_made_and_the_file_gets_the_umask_permissions(tmp_path):
    old = os.umask(0o027)
    try:
        target = tmp_path / "a" / "b" / "out.md"
        assert atomic_write_bytes(target, b"x") is True
    finally:
        os.umask(old)
    assert target.read_bytes() == b"x"
    assert target.stat().st_mode & 0o777 == 0o640


def test_keep_existing_never_replaces_and_the_first_of_racing_writers_wins(tmp_path):
    target = tmp_path / "meta.json"
    assert atomic_write_bytes(target, b"first", keep_existing=True) is True
    assert atomic_write_bytes(target, b"second", keep_existing=True) is False
    assert target.read_bytes() == b"first"

    racing = tmp_path / "racing.json"
    barrier = threading.Barrier(8)
    results: list[bool] = []

    def writer(i):
        def write(handle):
            handle.write(f"writer {i}".encode())
            barrier.wait(timeout=30)  # every writer has its temporary before any links it in

        results.append(atomic_write(racing, write, keep_existing=True))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    assert racing.read_bytes().startswith(b"writer ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meta.json", "racing.json"]


def test_concurrent_replacing_writers_leave_one_whole_version(tmp_path):
    target = tmp_path / "manifest.json"
    versions = [bytes([65 + i]) * 100_000 for i in range(8)]

    def writer(data):
        for _ in range(20):
            atomic_write_bytes(target, data)
            assert target.read_bytes() in versions  # never a mix or a part

    threads = [threading.Thread(target=writer, args=(v,)) for v in versions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert target.read_bytes() in versions
    assert list(tmp_path.iterdir()) == [target]


def test_cleanup_is_per_file_name_and_glob_characters_in_a_name_are_literal(tmp_path):
    other = tmp_path / ".other.json.tmp-7-abc"
    mine = tmp_path / ".run[1].json.tmp-7-abc"
    for p in (other, mine):
        p.write_bytes(b"left by a killed writer")
        _backdate(p, ABANDONED_AFTER_SECONDS + 1)
    atomic_write_bytes(tmp_path / "run[1].json", b"{}")
    assert other.exists() and not mine.exists()
    assert remove_abandoned_temporaries(tmp_path) == 1
    assert not other.exists()
