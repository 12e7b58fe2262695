"""The inputs and autograd references of the graded exercises, per (exercise, seed): the
grader's, never the students'.

Computed in the grader, outside any sandbox, on the hidden seeds of each student
(course_tools/verdicts.py). The students' self-checks read the references of the public seeds
from bptt_grading/public_references.json, which this module writes: neither the notebooks'
protocols nor the autograd references reach a student's machine or a graded kernel.

    reference(exercise, seed) -> dict      python -m course_tools.references ex33_4 0 1
    python -m course_tools.references --public > bptt_grading/public_references.json
"""

from __future__ import annotations

import json
import sys
from functools import cache

import numpy as np
import torch

from bptt_grading.inkernel import stand_in_33_5
from bptt_grading.judge import CONFIG_33_3, CONFIG_33_5


def _setup_33_3(hidden_size: int, model_seed: int, data_seed: int):
    """Steps 1–2 of the 33.3 protocol, the model seeded with model_seed, the split made with
    data_seed: (model, data)."""
    from bptt_lib.tasks import RememberFirstRNN, RememberFirstSplit

    c = CONFIG_33_3
    torch.manual_seed(model_seed)
    model = RememberFirstRNN(8, hidden_size)
    return model, RememberFirstSplit.make(c["T"], n_train=c["N"], n_test=c["N"], seed=data_seed)


def _init_norms_33_3(hidden_size: int, model_seed: int, data_seed: int) -> np.ndarray:
    """‖∂L/∂h_t‖ (T,) at initialisation on the test set of `_setup_33_3`'s model and data."""
    from bptt_lib.tasks import per_step_grad_norms

    model, data = _setup_33_3(hidden_size, model_seed, data_seed)
    return per_step_grad_norms(model, data.X_test, data.y_test).numpy()


def _protocol_33_3(hidden_size: int, seed: int):
    """The 33.3 run the notebook specifies: (record, ‖∂L/∂h_t‖ at initialisation, the same
    norms after training)."""
    from bptt_lib.tasks import per_step_grad_norms
    from bptt_lib.training import train

    model, data = _setup_33_3(hidden_size, seed, seed)
    g = per_step_grad_norms(model, data.X_test, data.y_test).numpy()
    rec = train(model, data, epochs=CONFIG_33_3["EPOCHS"], seed=seed)
    return rec, g, per_step_grad_norms(model, data.X_test, data.y_test).numpy()


def _protocol_33_5(transform, seed: int):
    """The 33.5 run the notebook specifies, for one gradient transform."""
    from bptt_lib.tasks import RememberFirstRNN, RememberFirstSplit
    from bptt_lib.training import train

    c = CONFIG_33_5
    torch.manual_seed(seed)
    model = RememberFirstRNN(8, 32)
    data = RememberFirstSplit.make(c["T"], n_train=c["N"], n_test=c["N"], seed=seed)
    return train(model, data, epochs=c["EPOCHS"], lr=c["LR"], optimizer="sgd",
                 grad_transform=transform, seed=seed)


def _forward(params: dict, xs: np.ndarray, target: int):
    """One sequence through the RNN in float64 torch, for autograd: the parameters as leaf
    tensors, the pre-activations z_t (T of them), the states h_0..h_T and the last-step loss."""
    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    hs, zs = [torch.zeros(len(params["b_h"]), dtype=torch.float64)], []
    for x in xs:
        zs.append(p["W_h"] @ hs[-1] + p["W_x"] @ torch.tensor(x) + p["b_h"])
        hs.append(torch.tanh(zs[-1]))
    loss = torch.nn.functional.cross_entropy(p["W_y"] @ hs[-1] + p["b_y"], torch.tensor(target))
    return p, zs, hs, loss


def _carried(maps: list, local: np.ndarray) -> np.ndarray:
    """Σ_{s ≤ t} |M_t ⋯ M_{s+1}| local_s for each row t: the local errors (rows s) carried
    through the actual linear maps (maps[t] takes row t − 1 to t), in absolute value only
    once they are combined, so that a vanishing or exploding product bounds as it behaves."""
    out = np.zeros_like(local)
    for s in range(len(local)):
        P = np.eye(local.shape[1])
        for t in range(s, len(local)):
            if t > s:
                P = maps[t] @ P
            out[t] += np.abs(P) @ local[s]
    return out


def bptt_bounds(params: dict, xs: np.ndarray, H: np.ndarray, target: int, dh: np.ndarray) -> dict:
    """For each value the grader compares, the size of the terms that make up its entries, as a
    first-order error bound: each operation's own terms (Σ|a_i b_i| of a dot product, 1 + h²
    for 1 − h², |h| for tanh, 4p for softmax), each carried to the result through the actual
    Jacobians of the steps after it (`_carried`), the rounding of a student's own forward pass
    included. A correct float64 answer, looped, vectorised or forward-mode, is within ~2e-16 of
    it.

    params: {W_x (n_h, n_in), W_h, b_h, W_y, b_y}; xs (T, n_in); H (T+1, n_h) = h_0..h_T;
    dh (T, n_h) = ∂L/∂h_t -> {"hs" (T+1, n_h), "h", "deltas" (T, n_h), "W_x", …, "b_y",
    "norms" (2, T)}: the shapes of the values."""
    A = {k: np.abs(v) for k, v in params.items()}
    T, X, aH, K = len(xs), np.abs(xs), np.abs(H), 1 - H ** 2      # K_t = tanh'(z_t)
    z_terms = aH[:-1] @ A["W_h"].T + X @ A["W_x"].T + A["b_h"]     # row t − 1: step t
    forward = [None] + [K[t + 1][:, None] * params["W_h"] for t in range(1, T)]  # h_t → h_{t+1}
    eh = np.vstack([np.zeros(H.shape[1]), _carried(forward, K[1:] * z_terms + aH[1:])])
    y = params["W_y"] @ H[T] + params["b_y"]
    ey = A["W_y"] @ (aH[T] + eh[T]) + A["b_y"]
    p = np.exp(y - y.max())
    p /= p.sum()
    dy = np.abs(p - (np.arange(len(y)) == target))
    e_dy = p * (4 + ey + ey.max()) + dy
    D = np.abs(dh) * K[1:]                                         # |δ_t|, row t − 1
    e_factor = np.abs(dh) * (1 + H[1:] ** 2 + 2 * aH[1:] * eh[1:]) + D   # at δ_t itself
    local = np.zeros_like(D)                                       # at ∂L/∂h_t, row t − 1
    local[-1] = A["W_y"].T @ (e_dy + dy)
    local[:-1] = (e_factor[1:] + D[1:]) @ A["W_h"]
    back = [None] + [params["W_h"].T * K[T - r + 1] for r in range(1, T)]  # rows T − r
    e_dh = _carried(back, local[::-1])[::-1]
    e_d = K[1:] * e_dh + e_factor
    norm = np.linalg.norm
    nd, nx, nh = norm(D, axis=1), norm(X, axis=1), norm(aH[:-1], axis=1)
    return {"hs": eh, "h": e_dh, "deltas": e_d, "W_x": (e_d + D).T @ X,
            "W_h": (e_d + D).T @ aH[:-1] + D.T @ eh[:-1], "b_h": (e_d + D).sum(axis=0),
            "W_y": np.outer(e_dy + dy, aH[T]) + np.outer(dy, eh[T]), "b_y": e_dy,
            "norms": np.array([(norm(e_d, axis=1) + nd) * nx,
                               (norm(e_d, axis=1) + nd) * nh + nd * norm(eh[:-1], axis=1)])}


def inputs_33_1(seed: int) -> tuple[dict, np.ndarray, int]:
    """(params, xs (T, n_in), target) of 33.1: n_in 2..5, n_h 3..7, n_out 2..5, T 4..9 (the
    notebook's example has n_h = 16, T = 30: other sizes, as it promises)."""
    from bptt_lib.rnn import init_params

    rng = np.random.default_rng(seed)
    n_in, n_h, n_out, T = (int(v) for v in rng.integers([2, 3, 2, 4], [6, 8, 6, 10]))
    params = init_params(n_in, n_h, n_out, seed=seed, scale=1.5)
    return params, rng.standard_normal((T, n_in)), int(rng.integers(n_out))


def _ref_33_1(seed: int) -> dict:
    params, xs, target = inputs_33_1(seed)
    T = len(xs)
    p, zs, hs, loss = _forward(params, xs, target)
    g = torch.autograd.grad(loss, [*zs, *hs[1:], p["W_x"]])
    deltas, dh = torch.stack(g[:T]).numpy(), torch.stack(g[T:2 * T]).numpy()
    H = torch.stack(hs).detach().numpy()
    d = np.linalg.norm(deltas, axis=1)
    norms = [d * np.linalg.norm(xs, axis=1), d * np.linalg.norm(H[:-1], axis=1)]
    b = bptt_bounds(params, xs, H, target, dh)
    return {"params": {k: v.tolist() for k, v in params.items()}, "xs": xs.tolist(),
            "target": target, "deltas": deltas.tolist(), "dh": dh.tolist(),
            "grad_W_x": g[-1].numpy().tolist(), "last_term": np.outer(deltas[-1], xs[-1]).tolist(),
            "grad_W_x_dh": (dh.T @ xs).tolist(), "norms": np.array(norms).tolist(),
            "norms_shifted": [norms[0].tolist(), (d * np.linalg.norm(H[1:], axis=1)).tolist()],
            "bounds": {k: b[k].tolist() for k in ("deltas", "W_x", "norms")}}


def with_complex_eigenvalues(n: int, seed: int) -> np.ndarray:
    """33.2's W_h (n, n): ρ = 0.95 and a pair of complex eigenvalues (|Im λ| > 0.05), as the
    notebook promises: the first that has them of the matrices drawn with seed, seed + 2³², …"""
    from bptt_lib.jacobians import matrix_with_spectral_radius

    for i in range(1000):
        W = matrix_with_spectral_radius(n, 0.95, seed=seed if i == 0 else seed + i * 2**32)
        if np.abs(np.linalg.eigvals(W).imag).max() > 0.05:
            return W
    raise RuntimeError(f"no matrix with complex eigenvalues for seed {seed}")


def _ref_33_2(seed: int) -> dict:
    from bptt_lib.jacobians import matrix_with_spectral_radius, spectral_norm, spectral_radius

    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 7))
    W_h = with_complex_eigenvalues(n, seed)
    k, t = 1, int(rng.integers(4, 9))
    W_x, xs = rng.standard_normal((n, 2)), torch.tensor(rng.standard_normal((t, 2)))

    def h_t_from_h_k(h):  # the linear RNN h_j = W_h h_{j-1} + W_x x_j for j = k+1 .. t
        for j in range(k, t):
            h = torch.tensor(W_h) @ h + torch.tensor(W_x) @ xs[j]
        return h

    jac = torch.autograd.functional.jacobian(h_t_from_h_k, torch.zeros(n, dtype=torch.float64))
    lam, V = np.linalg.eig(W_h)
    power_VT = (V * lam**6) @ V.T
    def rotation(angle):
        return np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])

    cases = [np.array([[0.5, 3.0], [0.0, 0.5]]),                     # σ_max > 1 but ρ < 1
             1.2 * np.array([[0.0, -1.0], [1.0, 0.0]]),              # λ = ±1.2i, real parts 0
             np.diag([0.9, -1.3, 0.2]),                              # negative λ explodes
             matrix_with_spectral_radius(5, 0.8, seed=seed + 1),
             rotation(1.0),                                          # ρ = 1 exactly
             # ρ = 1 up to rounding: ρ − 1 = −1.1e-16, +2.2e-16, and ~+7e-16 (orthogonal)
             rotation(0.3), matrix_with_spectral_radius(5, 1.0, seed=2),
             np.linalg.qr(rng.standard_normal((6, 6)))[0],
             # just outside the contract's tolerance 1e-9: not "neither"
             matrix_with_spectral_radius(4, 1 + 1e-6, seed=seed + 2),
             matrix_with_spectral_radius(4, 1 - 1e-6, seed=seed + 3)]

    def label(rho, tol=1e-9):
        return "vanishing" if rho < 1 - tol else "exploding" if rho > 1 + tol else "neither"

    def case(W):
        rho, lam = spectral_radius(W), np.linalg.eigvals(W)
        return {"W": W.tolist(), "label": label(rho), "rho": rho, "sigma": spectral_norm(W),
                "max_re": float(np.abs(lam.real).max()),
                "by_sigma": label(spectral_norm(W)), "by_re": label(np.abs(lam.real).max())}

    A = np.abs(W_h)  # the terms: |W_h|ⁿ for products, |V| |Λ|ⁿ |V⁻¹| for the eigendecomposition
    bounds = {"jacobian": np.linalg.matrix_power(A, t - k), "power": np.linalg.matrix_power(
        A, 6) + (abs(V) * abs(lam) ** 6) @ abs(np.linalg.inv(V))}
    return {"W_h": W_h.tolist(), "k": k, "t": t, "jacobian": jac.numpy().tolist(),
            "bounds": {key: b.tolist() for key, b in bounds.items()},
            "power_minus_1": np.linalg.matrix_power(W_h, t - k - 1).tolist(), "n": 6,
            "power": np.linalg.matrix_power(W_h, 6).tolist(), "power_VT": power_VT.real.tolist(),
            "classify": [case(W) for W in cases]}


def _ref_33_3(seed: int) -> dict:
    out = {}
    for h in (32, 128):
        rec, g, after = _protocol_33_3(h, seed)
        # what known mistakes give instead of grad_norms (judge.check_33_3's hints)
        wrong = {"after_training": after, "seed_ignored": _init_norms_33_3(h, 0, 0),
                 "split_reused": _init_norms_33_3(h, seed, 0), "reversed": g[::-1]}
        out[str(h)] = {"test_acc": rec.test_acc, "grad_norms": g.tolist(),
                       "wrong": {k: v.tolist() for k, v in wrong.items()}}
    return out


EXAMPLE_SIZES_33_4 = (2, 3, 2)  # (n_in, n_h, n_out) of the notebook's worked example


def inputs_33_4(seed: int) -> tuple[dict, np.ndarray, int]:
    """(params, xs (T, n_in), target) of 33.4: T = 3 for even seeds, 4..6 for odd ones; n_in
    2..5, n_h 2..6, n_out 2..4, never the sizes of the notebook's example (the notebook
    promises other sizes: they are drawn again)."""
    from bptt_lib.rnn import init_params

    rng = np.random.default_rng(seed)
    T = 3 if seed % 2 == 0 else int(rng.integers(4, 7))
    sizes = EXAMPLE_SIZES_33_4
    while sizes == EXAMPLE_SIZES_33_4:
        sizes = tuple(int(v) for v in rng.integers([2, 2, 2], [6, 7, 5]))
    n_in, n_h, n_out = sizes
    params = init_params(n_in, n_h, n_out, seed=seed, scale=1.5)
    return params, rng.standard_normal((T, n_in)), int(rng.integers(n_out))


def _ref_33_4(seed: int) -> dict:
    params, xs, target = inputs_33_4(seed)
    p, _, hs, loss = _forward(params, xs, target)
    g = torch.autograd.grad(loss, [*p.values(), *hs[1:]])
    grads = {k: v.numpy() for k, v in zip(p, g, strict=False)}
    grads["h"] = torch.stack(g[len(p):]).numpy()
    H = torch.stack(hs).detach().numpy()
    dz = grads["h"] * (1 - H[1:] ** 2)                   # δ_t, row t-1
    wrong = {"last_step": {"W_h": np.outer(dz[-1], H[-2]), "W_x": np.outer(dz[-1], xs[-1]),
                           "b_h": dz[-1]},
             "shifted": {"W_h": dz.T @ H[1:]}}           # δ_t h_tᵀ instead of δ_t h_{t-1}ᵀ
    b = bptt_bounds(params, xs, H, target, grads["h"])
    return {"params": {k: v.tolist() for k, v in params.items()}, "xs": xs.tolist(),
            "target": target, "hs": H.tolist(), "grads": {k: v.tolist() for k, v in grads.items()},
            **{kind: {k: v.tolist() for k, v in d.items()} for kind, d in wrong.items()},
            "bounds": {k: v.tolist() for k, v in b.items() if k not in ("deltas", "norms")}}


def _ref_33_5(seed: int) -> dict:
    from bptt_lib.training import clip_grad_norm

    theta = CONFIG_33_5["THETA"]
    return {"clip_loss": _protocol_33_5(clip_grad_norm(theta), seed).loss,
            "stand_in_loss": _protocol_33_5(stand_in_33_5(theta), seed).loss}


PUBLIC_SEEDS = {"ex33_1": (0,), "ex33_2": (0,), "ex33_3": (0,), "ex33_4": (0, 1), "ex33_5": (0,)}
REFERENCES = {"ex33_1": _ref_33_1, "ex33_2": _ref_33_2, "ex33_3": _ref_33_3,
              "ex33_4": _ref_33_4, "ex33_5": _ref_33_5}


@cache
def reference(exercise: str, seed: int) -> dict:
    """The inputs and reference answers of `exercise` ('ex33_N') for `seed`, as plain data.
    torch runs single-threaded here, as in graded kernels (bptt_grading.inkernel)."""
    torch.set_num_threads(1)
    return json.loads(json.dumps(REFERENCES[exercise](seed)))  # plain lists, as a kernel sends

def public() -> dict:
    """{exercise: {seed: reference}} for the seeds of the notebooks' self-checks (PUBLIC_SEEDS)."""
    return {ex: {str(seed): reference(ex, seed) for seed in seeds}
            for ex, seeds in PUBLIC_SEEDS.items()}


if __name__ == "__main__":
    if sys.argv[1:] == ["--public"]:
        print(json.dumps(public(), indent=1, sort_keys=True))
    else:
        print(json.dumps([reference(sys.argv[1], int(seed)) for seed in sys.argv[2:]]))
