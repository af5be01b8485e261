"""The sampler draws from the distribution it claims (temperature, top_p, stop string), batched or not.

A tiny random Llama with a 12-token vocabulary and a codec whose texts are token ids ("5 7 3"), so every
outcome is exact. Statistical tests compare premem's samples with the exact distribution of the first two
tokens (computed from the model's own logits through transformers' generate-path warpers) and with
`model.generate`, by chi-square at a strict alpha (fixed seeds: deterministic); exact tests cover greedy
decoding, top_p, the stop string, and the order of the k samples of each prompt.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from premem.engine.models import LoadedModel, build_tiny
from premem.engine.sampling import SamplingParams, TransformersSampler, _filter_top_p, next_tokens, target_nll
from premem.spec.schema import TinyArchitecture

VOCAB, PAD, BOS, EOS = 12, 0, 1, 2
ALPHA = 1e-3  # reject "same distribution" only below this p-value


class IdCodec:
    """Texts are space-separated token ids: what is sampled is exactly what comes back."""

    pad_id, bos_id, eos_id = PAD, BOS, EOS

    def encode(self, text: str) -> list[int]:
        return [int(t) for t in text.split()]

    def decode(self, ids) -> str:
        return " ".join(str(int(i)) for i in ids)


@pytest.fixture(scope="module")
def lm() -> LoadedModel:
    torch.manual_seed(0)
    model = build_tiny(TinyArchitecture(layers=2, hidden=32, heads=2, mlp=64, max_length=64), VOCAB, seed=0).eval()
    with torch.no_grad():  # sharper next-token distributions than a fresh init, so top_p cuts a real tail
        model.model.embed_tokens.weight.mul_(2.5)
    return LoadedModel(model, IdCodec(), torch.device("cpu"), torch.float32)


PROMPTS = ["5 6 7 8", "9", "3 4 10 11 5 6 7"]  # different lengths: left padding in a batch


# ------------------------------------------------------------------------------------------------ references
@torch.no_grad()
def ref_next(lm, ids: list[int], temperature: float, top_p: float) -> np.ndarray:
    """Next-token probabilities after `ids` (bos included): a full forward pass without cache or padding,
    then transformers' own temperature and top-p warpers (the ones `generate` uses)."""
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

    logits = lm.model(input_ids=torch.tensor([ids])).logits[:, -1].float()
    scores = TemperatureLogitsWarper(temperature)(None, logits)
    if top_p < 1:
        scores = TopPLogitsWarper(top_p)(None, scores)
    return torch.softmax(scores, -1)[0].double().numpy()


def first_two(lm, prompt: str, temperature: float, top_p: float) -> dict[tuple, float]:
    """Exact distribution of what a sample holds after at most 2 new tokens: () when the first is eos,
    (a,) when the second is, (a, b) otherwise."""
    base = [BOS] + IdCodec().encode(prompt)
    out: dict[tuple, float] = {}
    p1 = ref_next(lm, base, temperature, top_p)
    for a in np.nonzero(p1)[0]:
        if a == EOS:
            out[()] = out.get((), 0) + p1[a]
            continue
        p2 = ref_next(lm, base + [int(a)], temperature, top_p)
        for b in np.nonzero(p2)[0]:
            key = (int(a),) if b == EOS else (int(a), int(b))
            out[key] = out.get(key, 0) + p1[a] * p2[b]
    return out


def outcomes(texts: list[str]) -> dict[tuple, int]:
    counts: dict[tuple, int] = {}
    for t in texts:
        key = tuple(IdCodec().encode(t))
        counts[key] = counts.get(key, 0) + 1
    return counts


def chi2_fit(counts: dict[tuple, int], expected: dict[tuple, float]) -> float:
    """p-value of observed counts against exact probabilities; cells expected < 5 times are pooled. An
    outcome outside the support fails outright."""
    outside = set(counts) - set(expected)
    assert not outside, f"sampled outcomes that have probability 0: {sorted(outside)[:5]}"
    n = sum(counts.values())
    keys = sorted(expected, key=lambda k: -expected[k])
    obs, exp, rest_o, rest_e = [], [], 0, 0.0
    for k in keys:
        e = expected[k] * n
        if e >= 5:
            obs.append(counts.get(k, 0))
            exp.append(e)
        else:
            rest_o += counts.get(k, 0)
            rest_e += e
    if rest_e > 0:
        obs.append(rest_o)
        exp.append(rest_e)
    exp = np.array(exp) * n / sum(exp)  # exact sum despite rounding
    return float(stats.chisquare(obs, exp).pvalue)


def chi2_two_samples(a: dict[tuple, int], b: dict[tuple, int]) -> float:
    """p-value of "same distribution" for two samples of outcomes (contingency table, rare cells pooled)."""
    keys = sorted(set(a) | set(b), key=lambda k: -(a.get(k, 0) + b.get(k, 0)))
    rows, rest = [], [0, 0]
    for k in keys:
        if a.get(k, 0) + b.get(k, 0) >= 10:
            rows.append([a.get(k, 0), b.get(k, 0)])
        else:
            rest[0] += a.get(k, 0)
            rest[1] += b.get(k, 0)
    if sum(rest):
        rows.append(rest)
    return float(stats.chi2_contingency(np.array(rows).T).pvalue)


# ------------------------------------------------------------------------------------------------ statistics
def test_samples_follow_temperature_and_top_p_in_a_batch(lm):
    """Three prompts of different lengths sampled together (two batches, left padding): each prompt's first two
    tokens follow the exact distribution of its own logits under temperature 0.8 and top_p 0.7."""
    n = 6000
    params = SamplingParams(n=n, temperature=0.8, top_p=0.7, max_new_tokens=2, stop="11 11 11", seed=1)
    out = TransformersSampler(lm, batch_size=2).sample(PROMPTS, params)
    assert [len(o) for o in out] == [n] * len(PROMPTS)
    for prompt, texts in zip(PROMPTS, out):
        expected = first_two(lm, prompt, 0.8, 0.7)
        counts = outcomes(texts)
        assert chi2_fit(counts, expected) > ALPHA, prompt
        # the test has power: the same samples are rejected against the distribution without top_p,
        # and against another prompt's distribution
        assert chi2_fit_loose(counts, first_two(lm, prompt, 0.8, 1.0)) < 1e-6
    assert chi2_fit_loose(outcomes(out[0]), first_two(lm, PROMPTS[1], 0.8, 0.7)) < 1e-6


def chi2_fit_loose(counts, expected) -> float:
    """chi2_fit that pools outcomes outside `expected`'s support instead of failing (for the power checks)."""
    known = {k: v for k, v in counts.items() if k in expected}
    outside = sum(v for k, v in counts.items() if k not in expected)
    if outside:
        return 0.0
    return chi2_fit(known, expected)


def test_batched_and_unbatched_draw_from_the_same_distribution(lm):
    """One prompt alone (batch of 1) and the same prompt among others (batch of 3, most left padding):
    the two samples agree with each other and with the exact distribution."""
    n = 5000
    params = SamplingParams(n=n, temperature=1.0, top_p=0.9, max_new_tokens=2, stop="11 11 11", seed=2)
    alone = TransformersSampler(lm, batch_size=1).sample([PROMPTS[1]], params)[0]
    together = TransformersSampler(lm, batch_size=8).sample(PROMPTS, params)[1]
    expected = first_two(lm, PROMPTS[1], 1.0, 0.9)
    assert chi2_fit(outcomes(alone), expected) > ALPHA
    assert chi2_fit(outcomes(together), expected) > ALPHA
    assert chi2_two_samples(outcomes(alone), outcomes(together)) > ALPHA


@torch.no_grad()
def test_samples_match_generate(lm):
    """premem's sampler and `model.generate(do_sample=True, temperature, top_p, top_k=0)` agree in distribution."""
    n = 5000
    params = SamplingParams(n=n, temperature=0.8, top_p=0.8, max_new_tokens=2, stop="11 11 11", seed=3)
    ours = TransformersSampler(lm).sample([PROMPTS[0]], params)[0]
    ids = torch.tensor([[BOS] + IdCodec().encode(PROMPTS[0])])
    torch.manual_seed(3)
    seqs = lm.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=0.8,
                             top_p=0.8, top_k=0, max_new_tokens=2, num_return_sequences=n, pad_token_id=PAD,
                             eos_token_id=EOS)
    theirs = []
    for row in seqs[:, ids.shape[1]:].tolist():
        got = []
        for t in row:
            if t == EOS:
                break
            got.append(t)
        theirs.append(IdCodec().decode(got))
    assert chi2_two_samples(outcomes(ours), outcomes(theirs)) > ALPHA


# ------------------------------------------------------------------------------------------------ exact checks
@torch.no_grad()
def greedy(lm, prompt: str, max_new: int, stop: list[int] | None = None) -> list[int]:
    """Argmax decoding by full forward passes (no cache, no padding), ending at eos or after `stop`."""
    ids = [BOS] + IdCodec().encode(prompt)
    out: list[int] = []
    for _ in range(max_new):
        t = int(lm.model(input_ids=torch.tensor([ids])).logits[0, -1].argmax())
        if t == EOS:
            break
        out.append(t)
        ids.append(t)
        if stop and out[-len(stop):] == stop:
            break
    return out


def test_temperature_zero_is_greedy_and_k_samples_come_in_prompt_order(lm):
    prompts = ["3 4 10 11 5 6 7", "9", "5 6 7 8", "9 9"]  # not in length order; two batches
    params = SamplingParams(n=3, temperature=0.0, top_p=0.95, max_new_tokens=10, stop="99", seed=0)
    out = TransformersSampler(lm, batch_size=2).sample(prompts, params)
    assert len(out) == len(prompts)
    for prompt, samples in zip(prompts, out):
        assert samples == [IdCodec().decode(greedy(lm, prompt, 10))] * 3, prompt
    logits = torch.randn(5, VOCAB)
    assert torch.equal(next_tokens(logits, 0.0, 0.5, torch.Generator()), logits.argmax(-1))


def test_top_p_keeps_the_smallest_set_that_reaches_p():
    probs = torch.tensor([[0.15, 0.5, 0.05, 0.3]])
    kept = lambda p: set(torch.nonzero(_filter_top_p(probs, p)[0]).flatten().tolist())  # noqa: E731
    assert kept(0.4) == {1}  # 0.5 alone reaches 0.4
    assert kept(0.5) == {1}  # ... and 0.5
    assert kept(0.75) == {1, 3}
    assert kept(0.85) == {0, 1, 3}
    assert kept(0.99) == {0, 1, 2, 3}
    assert kept(1.0) == {0, 1, 2, 3}
    assert torch.allclose(_filter_top_p(probs, 0.75), torch.tensor([[0, 0.5 / 0.8, 0, 0.3 / 0.8]]))
    g = torch.Generator().manual_seed(0)
    for _ in range(200):  # against brute force on random rows: smallest prefix, in descending order, with mass >= p
        row = torch.softmax(torch.randn(1, 9, generator=g) * 2, -1).double()
        p = float(torch.rand(1, generator=g)) * 0.98 + 0.01
        ranked = torch.argsort(row[0], descending=True).tolist()
        mass, want = 0.0, set()
        for i in ranked:
            want.add(i)
            mass += float(row[0, i])
            if mass >= p:
                break
        got = _filter_top_p(row, p)
        assert set(torch.nonzero(got[0]).flatten().tolist()) == want
        assert float(got.sum()) == pytest.approx(1.0)


def test_the_stop_string_ends_a_sample(lm):
    prompt = PROMPTS[0]
    g = greedy(lm, prompt, 12)
    assert len(g) >= 6, "the fixture's greedy continuation is too short for this test"
    stop = g[3:5]
    first = next(j for j in range(1, len(g)) if g[j - 1:j + 1] == stop)
    params = SamplingParams(n=2, temperature=0.0, max_new_tokens=12, stop=IdCodec().decode(stop))
    out = TransformersSampler(lm).sample([prompt], params)[0]
    assert out == [IdCodec().decode(g[:first + 1])] * 2  # the stop string included, nothing after it
    # sampled: a sample holding the stop string ends right after its first occurrence; one without it ran to
    # max_new_tokens or ended at eos (never included)
    params = SamplingParams(n=400, temperature=1.0, top_p=1.0, max_new_tokens=15, stop="4 5", seed=5)
    hits = 0
    for text in TransformersSampler(lm).sample(PROMPTS, params)[0]:
        ids = IdCodec().encode(text)
        assert EOS not in ids
        at = next((j for j in range(1, len(ids)) if ids[j - 1:j + 1] == [4, 5]), None)
        if at is not None:
            hits += 1
            assert at == len(ids) - 1
    assert hits > 0


def test_max_new_tokens_and_same_seed_same_samples(lm):
    params = SamplingParams(n=4, temperature=1.0, top_p=1.0, max_new_tokens=7, stop="99", seed=9)
    a = TransformersSampler(lm).sample(PROMPTS, params)
    b = TransformersSampler(lm).sample(PROMPTS, params)
    assert a == b
    assert all(len(IdCodec().encode(t)) <= 7 for s in a for t in s)


def test_target_nll_matches_one_forward_per_example(lm):
    pairs = [(p, " 3 4 5 6") for p in PROMPTS] + [("9", " 7")]
    got = target_nll(lm, pairs, max_batch_tokens=16)  # several batches, right padding
    for (prompt, target), (nll, n) in zip(pairs, got):
        p, t = [BOS] + IdCodec().encode(prompt), IdCodec().encode(target)
        with torch.no_grad():
            logits = lm.model(input_ids=torch.tensor([p + t])).logits[0, :-1]
        lp = torch.log_softmax(logits, -1).gather(-1, torch.tensor(p + t)[1:, None]).squeeze(-1)[len(p) - 1:]
        assert n == len(t) and nll == pytest.approx(float(-lp.mean()), abs=1e-5)
