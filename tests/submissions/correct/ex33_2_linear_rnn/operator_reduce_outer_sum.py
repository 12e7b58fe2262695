# The Jacobian product by functools.reduce(operator.matmul, …); W_h^n as Σ_i λ_iⁿ v_i w_iᵀ over
# the eigenpairs (w_iᵀ the rows of V⁻¹), real part taken; classify with math.isclose.
import functools
import math
import operator


def linear_jacobian_product(W_h, k, t):
    return functools.reduce(operator.matmul, [W_h] * (t - k), np.eye(W_h.shape[0]))


def power_via_eig(W_h, n):
    lam, V = np.linalg.eig(W_h)
    W = np.linalg.inv(V)
    total = sum(l ** n * np.outer(V[:, i], W[i]) for i, l in enumerate(lam))
    return np.ascontiguousarray(total.real, dtype=np.float64)


def classify(W_h):
    rho = float(np.max(np.abs(np.linalg.eigvals(W_h))))
    if math.isclose(rho, 1.0, rel_tol=0.0, abs_tol=1e-9):
        return "neither"
    return "vanishing" if rho < 1 else "exploding"
