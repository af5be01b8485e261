"""PreMemAcc on hand-computed trajectories (PAPER_NOTES.md definitions)."""
import math

import numpy as np
import pytest

from premem.metrics.premem import (calibrate, loglog_perplexity, masked_acc, not_memorized, premem_acc,
                                   premem_acc_grid, r2_identity, r2_line)

P = math.log(0.1)  # memorized once mean NLL < 0.1 nats/token (perplexity < 1.105)


def test_loglog_perplexity_is_log_of_mean_nll():
    assert loglog_perplexity(np.array([math.e]))[0] == pytest.approx(1.0)
    assert loglog_perplexity(np.array([0.0]))[0] == -math.inf


def test_not_memorized_boundary_is_inclusive():
    nll = np.array([0.1, 0.0999, 0.5])
    assert not_memorized(nll, P).tolist() == [True, False, True]


def test_masked_acc_zeroes_memorized():
    acc = np.array([[0.6, 1.0]])
    nll = np.array([[0.5, 0.01]])
    assert masked_acc(acc, nll, P).tolist() == [[0.6, 0.0]]


def test_premem_by_hand():
    # columns: three examples over four epochs
    # ex0: solved (0.8) while not memorized at epoch 2, memorized from epoch 3 with acc 1.0 -> 0.4, 0.8, 0.8, 0.8
    # ex1: memorized before it is ever solved -> always 0 even though acc reaches 1.0
    # ex2: accuracy drops after epoch 1 (1.0 then 0.2, 0.0, 0.6): PreMemAcc follows the drop (min with Acc)
    acc = np.array([[0.4, 0.0, 1.0],
                    [0.8, 0.2, 0.2],
                    [1.0, 1.0, 0.0],
                    [1.0, 1.0, 0.6]])
    nll = np.array([[0.9, 0.05, 0.8],
                    [0.5, 0.02, 0.7],
                    [0.05, 0.01, 0.6],
                    [0.02, 0.01, 0.05]])
    expected = np.array([[0.4, 0.0, 1.0],
                         [0.8, 0.0, 0.2],
                         [0.8, 0.0, 0.0],
                         [0.8, 0.0, 0.6]])
    got = premem_acc(acc, nll, P)
    np.testing.assert_allclose(got, expected)
    # the grid version gives the same per-checkpoint means
    grid = premem_acc_grid(acc, nll, np.array([P, -100.0]))
    np.testing.assert_allclose(grid[0], expected.mean(axis=1))
    # with p so low that nothing is memorized, PreMemAcc = min(running max of Acc, Acc) = Acc
    np.testing.assert_allclose(grid[1], acc.mean(axis=1))


def test_r2_identity_and_line():
    y = np.array([0.1, 0.2, 0.3, 0.4])
    assert r2_identity(y, y) == 1.0
    assert r2_identity(y, y + 0.1) == pytest.approx(1 - 4 * 0.01 / 0.05)
    assert r2_line(y, 2 * y + 1) == pytest.approx(1.0)  # a line fits perfectly even off y = x
    assert math.isnan(r2_identity(np.array([0.3, 0.3]), np.array([0.1, 0.2])))


def test_calibrate_picks_the_p_that_tracks_test():
    # one run, two examples, three epochs; test accuracy equals PreMemAcc at p = log(0.1)
    acc = np.array([[0.5, 0.0], [1.0, 0.5], [1.0, 1.0]])
    nll = np.array([[0.8, 0.9], [0.3, 0.05], [0.01, 0.01]])
    test = premem_acc(acc, nll, P).mean(axis=1)
    ps = [-5.0, P, 0.0]
    best, curve = calibrate([(acc, nll, test)], ps)
    assert best == pytest.approx(P)
    assert curve[1]["r2"] == pytest.approx(1.0)
    assert len(curve) == 3
    assert calibrate([], ps) == (None, [])
