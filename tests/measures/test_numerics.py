"""The classic measures that need the model, on cases whose answers are known."""
import copy
import math

import numpy as np
import pytest
import torch

from premem.measures.numerics import gradient_minibatches, minibatch_gradients, streamed_variance, weight_distance
from premem.spec.schema import TinyArchitecture


def _tiny(seed=0):
    from premem.engine.models import build_tiny

    return build_tiny(TinyArchitecture(layers=1, hidden=16, heads=2, mlp=32, max_length=32), vocab_size=20, seed=seed)


def _seqs(n, seed=0):
    g = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        length = int(g.integers(6, 12))
        out.append(([1] + g.integers(4, 20, size=length - 1).tolist(), int(g.integers(2, 5))))
    return out


def test_gradient_variance_of_identical_minibatches_is_zero():
    model = _tiny()
    batch = _seqs(4)
    out = streamed_variance(minibatch_gradients(model, [batch, batch, batch], pad_id=0, device="cpu", micro_batch=2))
    assert out["variance"] == 0.0
    assert out["minibatches"] == 3 and out["mean_grad_norm"] > 0


def test_gradient_variance_is_positive_for_different_minibatches_and_independent_of_micro_batch():
    model = _tiny()
    batches = gradient_minibatches(_seqs(12), minibatches=3, batch_size=4)
    a = streamed_variance(minibatch_gradients(model, batches, 0, "cpu", micro_batch=1))["variance"]
    b = streamed_variance(minibatch_gradients(model, batches, 0, "cpu", micro_batch=4))["variance"]
    assert a > 0
    assert b == pytest.approx(a, rel=1e-4)  # accumulation gives the minibatch's gradient whatever the split


def test_accumulated_gradient_equals_the_whole_minibatch_mean_loss_gradient():
    model = _tiny()
    batch = _seqs(5, seed=3)
    grads = next(iter(minibatch_gradients(model, [batch], 0, "cpu", micro_batch=2)))
    from premem.engine.train import padded_batch

    model.zero_grad()
    ids, _, labels = padded_batch(batch, 0, "cpu")
    model(input_ids=ids, labels=labels).loss.backward()  # transformers: mean over all target tokens
    ref = [p.grad for p in model.parameters() if p.requires_grad]
    for g, r in zip(grads, ref):
        assert torch.allclose(g, r, atol=1e-6)


def test_streamed_variance_matches_numpy():
    g = torch.Generator().manual_seed(0)
    grads = [[torch.randn(3, 4, generator=g), torch.randn(5, generator=g)] for _ in range(6)]
    flat = np.stack([np.concatenate([t.numpy().ravel() for t in gs]) for gs in grads])
    want = flat.var(axis=0, ddof=1).mean()
    assert streamed_variance(iter(grads))["variance"] == pytest.approx(want, rel=1e-5)  # float32 buffers


def test_gradient_minibatches_needs_two_and_cuts_consecutive_batches():
    seqs = _seqs(10)
    assert gradient_minibatches(seqs, 5, 4) == [seqs[0:4], seqs[4:8]]  # as many full minibatches as fit
    with pytest.raises(ValueError, match="at least 2 minibatches"):
        gradient_minibatches(seqs, 5, 6)


def test_distance_of_an_untouched_model_is_zero_and_of_a_known_change_is_its_square_sum():
    base = _tiny()
    model = copy.deepcopy(base)
    assert weight_distance(model, base)["distance"] == 0.0
    layer = model.model.layers[0].mlp.up_proj.weight
    with torch.no_grad():
        layer.add_(0.5)
    out = weight_distance(model, base)
    assert out["distance"] == pytest.approx(0.25 * layer.numel(), rel=1e-6)


def test_distance_leaves_out_embeddings_when_asked():
    base = _tiny()
    model = copy.deepcopy(base)
    with torch.no_grad():
        model.get_input_embeddings().weight.add_(1.0)  # tied with the output layer
    assert weight_distance(model, base, exclude_embeddings=True)["distance"] == 0.0
    n = model.get_input_embeddings().weight.numel()
    assert weight_distance(model, base, exclude_embeddings=False)["distance"] == pytest.approx(n, rel=1e-6)


def test_distance_refuses_models_of_different_shapes():
    with pytest.raises(ValueError, match="no counterpart"):
        from premem.engine.models import build_tiny

        other = build_tiny(TinyArchitecture(layers=1, hidden=32, heads=2, mlp=32, max_length=32), 20, 0)
        weight_distance(_tiny(), other)
