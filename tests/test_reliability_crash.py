"""kill -9 at random instants of a save: the target always loads as the old or the new model, and the next save
removes what the killed one left (issue 20, items 1 and 3)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from static_model import StaticModel

# A zygote process imports the package once and forks one saver per trial; the test kills the saver with SIGKILL.
ZYGOTE = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from static_model import StaticModel

    target, rows = sys.argv[1], int(sys.argv[2])
    tokenizer = Tokenizer(WordLevel({f"w{i}": i for i in range(rows)}, unk_token="w0"))
    table = np.random.default_rng(0).normal(size=(rows, 64)).astype(np.float32)
    models = [StaticModel(table, tokenizer, contrast=0.0), StaticModel(table * 2, tokenizer, contrast=1.0)]
    print("ready", flush=True)
    for line in sys.stdin:
        mode = line.strip()
        if mode == "once":
            models[0].save_pretrained(target, overwrite=True)
            print("saved", flush=True)
            continue
        pid = os.fork()
        if pid == 0:
            if mode == "pair":
                os.environ["STATIC_MODEL_RENAME_PAIR"] = "1"
            i = 0
            while True:
                models[i % 2].save_pretrained(target, overwrite=True)
                i += 1
        print(pid, flush=True)
        os.waitpid(pid, 0)
        print("reaped", flush=True)
    """
)
ROWS = 4000
TRIALS = 25  # per swap method


@pytest.mark.parametrize("mode", ["exchange", "pair"])
def test_kill_9_at_any_instant_leaves_old_or_new_model(tmp_path, mode):
    target = tmp_path / "m"
    zygote = subprocess.Popen([sys.executable, "-c", ZYGOTE, str(target), str(ROWS)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert zygote.stdout.readline().strip() == "ready"
        table = np.random.default_rng(0).normal(size=(ROWS, 64)).astype(np.float32)
        rng = random.Random(mode)
        leftovers = 0
        for trial in range(TRIALS):
            zygote.stdin.write(mode + "\n")
            zygote.stdin.flush()
            pid = int(zygote.stdout.readline())
            time.sleep(rng.uniform(0, 0.3))  # anywhere in the saver's loop, before its first save included
            os.kill(pid, signal.SIGKILL)
            assert zygote.stdout.readline().strip() == "reaped"
            if not target.exists() and not list(tmp_path.glob(".m.old-*")):  # killed before its first save ended:
                assert trial == 0  # no model was promised yet; start from one
                zygote.stdin.write("once\n")
                zygote.stdin.flush()
                assert zygote.stdout.readline().strip() == "saved"
            model = StaticModel.from_pretrained(target)
            scale = float(model.embedding_matrix()[0, 0] / table[0, 0])
            assert scale in (1.0, 2.0), f"trial {trial}: a table that is neither the old nor the new one"
            np.testing.assert_array_equal(model.embedding_matrix(), table * scale)
            assert model.contrast == scale - 1.0, f"trial {trial}: config of one model, table of the other"
            leftovers += len(list(tmp_path.iterdir())) > 1
        # the next save (here, in this process) removes every leftover of the killed savers
        StaticModel(table, model.tokenizer).save_pretrained(target, overwrite=True)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
        print(mode, f"{TRIALS} kills, {leftovers} of them left a killed save's folder behind")
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=60)


def test_crash_between_the_two_renames_is_recovered(tiny_model, tmp_path):
    """The state a save killed between its renames leaves (target gone, old moved aside, maybe a partial new one):
    a load reads the old model without changing the disk, and the next save puts it back before replacing it."""
    target = tmp_path / "m"
    tiny_model.save_pretrained(target)
    os.rename(target, tmp_path / ".m.old-999999999-abc")  # a pid that no process has
    (tmp_path / ".m.tmp-999999999-def").mkdir()
    (tmp_path / ".m.tmp-999999999-def" / "model.safetensors").write_bytes(b"half")
    loaded = StaticModel.from_pretrained(target)
    np.testing.assert_array_equal(loaded.embedding_matrix(), tiny_model.embedding_matrix())
    assert not target.exists()  # loading changed nothing
    with pytest.raises(FileExistsError, match="overwrite=True"):  # the recovered folder is a model: explicit replace
        tiny_model.quantize("float16").save_pretrained(target)
    assert sorted(p.name for p in tmp_path.iterdir())[-1] == "m" and target.is_dir()
    tiny_model.quantize("float16").save_pretrained(target, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    assert StaticModel.from_pretrained(target).dtype == "float16"


def test_leftovers_of_a_running_save_are_kept(tiny_model, tmp_path):
    """Only leftovers whose process is gone are removed: a concurrent save's temporary folder survives."""
    busy = tmp_path / f".m.tmp-{os.getppid()}-abc"  # our parent process is alive
    busy.mkdir()
    tiny_model.save_pretrained(tmp_path / "m")
    assert busy.exists()


def test_old_style_leftovers_are_cleaned(tiny_model, tmp_path):
    """Leftovers of the earlier naming (``.NAME.tmp-HEX``, issue 20 item 3's 571 MB folder) go at the next save."""
    (tmp_path / ".m.tmp-0123456789ab").mkdir()
    tiny_model.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_concurrent_saves_to_one_new_target_all_succeed(tiny_model, tmp_path):
    """Threads saving the same new folder at once: each save succeeds, the folder ends up as one of them, whole."""
    import threading

    models = [tiny_model.quantize(d) for d in ("float32", "float16", "int8")] * 2
    errors = []

    def save(model):
        try:
            model.save_pretrained(tmp_path / "m", overwrite=True)
        except Exception as exc:  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(m,)) for m in models]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert StaticModel.from_pretrained(tmp_path / "m").dtype in ("float32", "float16", "int8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
