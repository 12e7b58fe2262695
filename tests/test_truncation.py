"""bptt_lib.truncation against autograd and full BPTT, in float64: truncated BPTT with a loss at
every step (chunks of K, BPTT(k2; k1)), randomized truncation in expectation, the echo task and
the count of saved bytes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bptt_lib.checks import rel_error
from bptt_lib.experiments import randomized_expectation
from bptt_lib.rnn import rnn_forward
from bptt_lib.tasks import RememberFirstRNN, stack_networks
from bptt_lib.training import adam
from bptt_lib.truncation import (
    IGNORE,
    delayed_echo,
    hidden_chunk,
    randomized_xi,
    saved_bytes,
    step_losses,
    tbptt,
    tbptt_k1_k2,
)

GRAD_RTOL = 1e-12  # float64, relative to the largest entry


def _problem(S, B, T, C, H, seed):
    """A stack of S float64 networks and random inputs and targets (every step has one)."""
    torch.manual_seed(seed)
    model = stack_networks([RememberFirstRNN(C, H).double() for _ in range(S)])
    xs = F.one_hot(torch.randint(C, (S, B, T)), C).double()
    return model, xs, torch.randint(C, (S, B, T))


def _recorded(model):
    """An update that changes nothing and records every gradient it is given."""
    seen = []

    def update():
        seen.append({k: getattr(model, k).grad.clone() for k in model.PARAM_NAMES})
    return seen, update


def _reference(model, xs, ys, s, start, end, first):
    """Autograd, built independently with `rnn.rnn_forward`, of network s: the losses of steps
    first .. end−1, through the graph from step `start` on (h_start detached) to `end`."""
    p = {k: getattr(model, k)[s].detach().clone().requires_grad_(True)
         for k in model.PARAM_NAMES}
    h_start = rnn_forward(p, xs[s, :, :start])[:, -1].detach()
    hs = rnn_forward(p, xs[s, :, start:end], h_start)[:, 1:]
    logits = hs @ p["W_y"].T + p["b_y"]
    loss = sum(F.cross_entropy(logits[:, t - start], ys[s, :, t]) for t in range(first, end))
    return dict(zip(model.PARAM_NAMES, torch.autograd.grad(loss, list(p.values())),
                    strict=True))


def _assert_close(mine, ref):
    for name, g in ref.items():
        assert rel_error(mine[name], g) < GRAD_RTOL, (name, rel_error(mine[name], g))


@pytest.mark.parametrize("k1_k2", [None, (None, None)], ids=["tbptt", "k1_k2"])
def test_one_chunk_of_T_is_full_bptt(k1_k2):
    """K = T (and k1 = k2 = T): one update, with the gradient of full BPTT of Σ_t ℓ_t."""
    S, T = 2, 9
    model, xs, ys = _problem(S, 3, T, 4, 5, seed=1)
    seen, update = _recorded(model)
    if k1_k2 is None:
        tbptt(model, xs, ys, T, update)
    else:
        tbptt_k1_k2(model, xs, ys, T, T, update)
    assert len(seen) == 1
    for s in range(S):
        _assert_close({k: g[s] for k, g in seen[0].items()},
                      _reference(model, xs, ys, s, 0, T, 0))


@pytest.mark.parametrize("T, k1, k2", [(11, 3, 7), (10, 2, 2), (9, 4, 9), (12, 5, 6)])
def test_each_update_is_autograd_of_the_truncated_graph(T, k1, k2):
    """Every update of BPTT(k2; k1) gets autograd's gradient of its k1 new losses through the
    last k2 steps only (weights held fixed, so that the reference is a single graph)."""
    S = 3
    model, xs, ys = _problem(S, 2, T, 3, 4, seed=T + k1)
    seen, update = _recorded(model)
    tbptt_k1_k2(model, xs, ys, k1, k2, update)
    ends = [min(e, T) for e in range(k1, T + k1, k1)]
    assert len(seen) == len(ends)
    for grads, end in zip(seen, ends, strict=True):
        first = end - k1 if end % k1 == 0 else end - end % k1
        for s in range(S):
            ref = _reference(model, xs, ys, s, max(0, end - k2), end, first)
            _assert_close({k: g[s] for k, g in grads.items()}, ref)


def test_k1_equal_to_k2_is_tbptt_bit_for_bit():
    """Trained with Adam (the weights change between chunks), BPTT(K; K) is `tbptt` with K when
    K divides T (otherwise its last window reaches K steps back, into the previous chunk)."""
    runs = []
    for method in ("tbptt", "k1_k2"):
        model, xs, ys = _problem(3, 4, 12, 3, 6, seed=7)
        step = adam(list(model.parameters()), 1e-2)
        losses = (tbptt(model, xs, ys, 4, step) if method == "tbptt"
                  else tbptt_k1_k2(model, xs, ys, 4, 4, step))
        runs.append((losses, [p.detach().clone() for p in model.parameters()]))
    (la, pa), (lb, pb) = runs
    assert torch.equal(la, lb) and all(torch.equal(a, b) for a, b in zip(pa, pb, strict=True))


def test_k2_below_k1_is_refused():
    model, xs, ys = _problem(1, 1, 5, 2, 3, seed=0)
    with pytest.raises(ValueError):
        tbptt_k1_k2(model, xs, ys, 3, 2, lambda: None)


def test_randomized_truncation_is_unbiased_exactly():
    """Over all 2^T patterns of cuts, weighted by their probabilities: full BPTT's gradient."""
    for T, p in ((6, 0.5), (8, 0.7)):
        result = randomized_expectation(T, p, seed=T)
        assert result["patterns"] == 2 ** T
        assert result["error"] < GRAD_RTOL and result["single"] > 0.05


def test_randomized_truncation_is_unbiased_on_average_of_draws():
    """The mean of N random draws of ξ equals the full gradient within 5 standard errors of that
    mean, in every entry (N networks in one stack, one draw each; float64)."""
    N, T, p = 4000, 7, 0.6
    _, xs, ys = _problem(1, 3, T, 3, 4, seed=3)
    net = RememberFirstRNN(3, 4).double()
    stack = stack_networks([net] * (N + 1))               # the last one: ξ = 1, full BPTT
    xi = randomized_xi(T, [torch.Generator().manual_seed(i) for i in range(N)], p,
                       torch.float64)
    xi = torch.cat([xi, torch.ones(T, 1, 1, 1, dtype=torch.float64)], 1)
    xs, ys = xs.expand(N + 1, *xs.shape[1:]), ys.expand(N + 1, *ys.shape[1:])
    hs = hidden_chunk(stack, xs, xs.new_zeros(N + 1, 3, 4), xi)
    step_losses(stack, hs, ys).sum().backward()
    for name in stack.PARAM_NAMES:
        g = getattr(stack, name).grad
        draws, full = g[:-1], g[-1]
        mean, se = draws.mean(0), draws.std(0) / N ** 0.5
        assert ((mean - full).abs() <= 5 * se + 1e-12).all(), name
    assert (xi[:, :-1] == 0).any() and (xi[:, :-1] == 1 / p).any()


def test_delayed_echo():
    X, y = delayed_echo(5, 12, 3, 4, generator=torch.Generator().manual_seed(0))
    assert X.shape == (5, 12, 4) and y.shape == (5, 12)
    assert (y[:, :3] == IGNORE).all() and torch.equal(y[:, 3:], X.argmax(-1)[:, :-3])


def test_saved_bytes_counts_each_storage_once():
    x = torch.randn(10, dtype=torch.float64, requires_grad=True)
    assert saved_bytes(lambda: torch.tanh(x)) == 80          # tanh keeps its output
    assert saved_bytes(lambda: x * x) == 80                  # x, saved twice, counted once
    assert saved_bytes(lambda: (x * 2).sum()) == 0           # nothing needed for backward


def test_memory_grows_linearly_with_the_chunk():
    model, xs, ys = _problem(1, 4, 20, 3, 5, seed=0)
    h = xs.new_zeros(1, 4, 5)
    nbytes = [saved_bytes(lambda K=K: step_losses(model, hidden_chunk(model, xs[:, :, :K], h),
                                                  ys[:, :, :K]).sum()) for K in (2, 5, 8, 20)]
    per_step = np.diff(nbytes) / np.diff([2, 5, 8, 20])
    assert (per_step == per_step[0]).all() and per_step[0] > 0
