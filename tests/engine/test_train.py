"""Training helpers: prompt masking, schedules, data order, and no silent truncation."""
import pytest
import torch

from premem.data.synthetic import ArithmeticTask
from premem.data.tokenizer import WordTokenizer
from premem.engine.models import LoadedModel, build_tiny
from premem.engine.train import Recipe, TooLong, encode_examples, epoch_order, lr_factor, pack, padded_batch
from premem.spec.schema import TinyArchitecture


def loaded():
    codec = WordTokenizer.for_arithmetic_task()
    model = build_tiny(TinyArchitecture(layers=1, hidden=16, heads=2, mlp=32, max_length=256), codec.vocab_size, 0)
    return LoadedModel(model, codec, torch.device("cpu"), torch.float32)


def test_only_the_target_carries_loss():
    lm = loaded()
    ex = ArithmeticTask(seed=0).split("train", 2)
    seqs = encode_examples(lm, ex)
    ids, mask, labels = padded_batch(seqs, lm.codec.pad_id, "cpu")
    for r, (s, plen) in enumerate(seqs):
        assert (labels[r, :plen] == -100).all()
        assert (labels[r, plen:len(s)] == ids[r, plen:len(s)]).all()
        assert (labels[r, len(s):] == -100).all() and mask[r, len(s):].sum() == 0
        assert lm.codec.decode(s[plen:]).startswith(" ") and lm.codec.decode(s[plen:]).endswith("\nDone.")


def test_too_long_examples_are_an_error_not_a_cut():
    lm = loaded()
    ex = ArithmeticTask(seed=0).split("train", 4)
    with pytest.raises(TooLong, match="longer than the model's max_length"):
        encode_examples(lm, ex, max_length=20)


def test_schedules_and_order():
    r = Recipe(learning_rate=1.0, total_steps=10, batch_size=1, schedule="linear", warmup_steps=2)
    assert [round(lr_factor(s, r), 3) for s in (0, 1, 2, 6, 10)] == [0.5, 1.0, 1.0, 0.5, 0.0]
    c = Recipe(learning_rate=1.0, total_steps=10, batch_size=1, schedule="cosine", warmup_steps=0)
    assert lr_factor(0, c) == pytest.approx(1.0) and lr_factor(5, c) == pytest.approx(0.5)
    assert epoch_order(10, 0, 2) == epoch_order(10, 0, 2) != epoch_order(10, 0, 3)
    assert sorted(epoch_order(10, 0, 2)) == list(range(10))


def test_pack_keeps_every_token_and_masks_prompts_on_request():
    blocks = pack([([1, 5, 6, 7], 2), ([1, 8, 9], 1), ([1, 4], 1)], block=3, sep=2, learn_prompts=False)
    # stream 1 5 6 7 2 1 8 9 2 1 4 2: whole blocks of 3, examples running across block edges
    assert [b for b, _ in blocks] == [[1, 5, 6], [7, 2, 1], [8, 9, 2], [1, 4, 2]]
    assert [m for _, m in blocks] == [[False, False, True], [True, True, False], [True, True, True],
                                      [False, True, True]]
    assert len(pack([([1, 5, 6, 7], 2)], block=3, sep=2)) == 1  # a partial last block is dropped


def test_micro_batches_make_the_same_update_as_the_whole_batch():
    import copy

    from premem.engine.train import make_optimizer, train_epoch

    a = loaded()
    b = LoadedModel(copy.deepcopy(a.model), a.codec, a.device, a.dtype)
    seqs = encode_examples(a, ArithmeticTask(seed=0).split("train", 8))  # examples of different lengths
    whole = Recipe(learning_rate=1e-2, total_steps=1, batch_size=8, max_grad_norm=None)
    micro = Recipe(learning_rate=1e-2, total_steps=1, batch_size=8, max_grad_norm=None, micro_batch_size=3)
    out_a = train_epoch(a, make_optimizer(a.model, whole), seqs, whole, seed=0, epoch=1, start_step=0)
    out_b = train_epoch(b, make_optimizer(b.model, micro), seqs, micro, seed=0, epoch=1, start_step=0)
    assert out_a["losses"] == pytest.approx(out_b["losses"], rel=1e-5) and out_a["tokens"] == out_b["tokens"]
    for (name, pa), pb in zip(a.model.named_parameters(), b.model.parameters()):
        assert torch.allclose(pa, pb, atol=1e-6), name
    init = loaded().model
    moved = any(not torch.equal(p, q) for p, q in zip(a.model.parameters(), init.parameters()))
    assert moved  # the step did change the weights, identically both ways
