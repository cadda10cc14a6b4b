"""The runtime import stays light: no torch, transformers, sentence-transformers, scikit-learn or distill."""

from __future__ import annotations

import subprocess
import sys

from helpers.paths import REPO

HEAVY = ("torch", "transformers", "sentence_transformers", "sklearn", "distill")


def test_static_model_never_imports_heavy_packages(tmp_path):
    script = f"""
import sys
import numpy as np
from tokenizers import Tokenizer, models, pre_tokenizers
import static_model
from static_model import StaticModel
tokenizer = Tokenizer(models.WordLevel({{"[UNK]": 0, "hi": 1}}, unk_token="[UNK]"))
tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
model = StaticModel(np.ones((2, 4), dtype=np.float32), tokenizer)
model.save_pretrained({str(tmp_path / "m")!r})
StaticModel.from_pretrained({str(tmp_path / "m")!r}).encode(["hi there"])
print(",".join(sorted(m for m in {HEAVY!r} if m in sys.modules)))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True)
    assert result.stdout.strip() == ""


def test_no_heavy_import_statements_in_the_package():
    for path in (REPO / "static_model").rglob("*.py"):
        text = path.read_text()
        for name in HEAVY:
            assert f"import {name}" not in text and f"from {name}" not in text, f"{path} imports {name}"
