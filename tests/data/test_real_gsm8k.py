"""Every gold answer of the real GSM8K parses (uses /work/shared/data/gsm8k when present, else skips)."""
import json
import re
from pathlib import Path

import pytest

from premem.data.answers import extract_gsm8k

GSM8K = Path("/work/shared/data/gsm8k")
SIZES = {"train": 7473, "test": 1319}


@pytest.mark.parametrize("split", ["train", "test"])
def test_every_real_gsm8k_answer_parses_as_an_integer(split):
    path = GSM8K / f"{split}.jsonl"
    if not path.is_file():
        pytest.skip(f"the real GSM8K is not on this machine ({path} is absent); the fixtures cover the format")
    bad = []
    n = 0
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            n += 1
            row = json.loads(line)
            ans = extract_gsm8k(row["answer"])
            if ans is None or not re.fullmatch(r"-?\d+", ans):
                bad.append((line_no, ans, row["answer"][-60:]))
    assert n == SIZES[split]
    assert not bad, bad[:10]


def test_real_gsm8k_loads_through_the_loader():
    if not (GSM8K / "train.jsonl").is_file() or not (GSM8K / "test.jsonl").is_file():
        pytest.skip(f"the real GSM8K is not on this machine ({GSM8K} is absent)")
    from premem.data.loaders import load_splits
    from premem.spec.schema import DatasetSpec

    ds = DatasetSpec(name="g", gsm8k={"train_file": str(GSM8K / "train.jsonl"), "test_file": str(GSM8K / "test.jsonl")})
    splits = load_splits(ds)
    assert (len(splits.train), len(splits.test)) == (SIZES["train"], SIZES["test"])
    assert splits.train[0].answer == "72" and splits.train[0].difficulty == 2
    assert all(1 <= ex.difficulty <= 20 for ex in splits.train + splits.test)
