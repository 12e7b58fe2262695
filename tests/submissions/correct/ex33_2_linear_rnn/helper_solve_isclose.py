import numpy.linalg as la


def linear_jacobian_product(W_h, k, t):
    out = np.eye(len(W_h))
    for _ in range(t - k):
        out = out @ W_h          # powers of one matrix commute
    return out


def eigen_power(W, n):
    lam, V = la.eig(W)
    # V Λ^n V⁻¹ = (V⁻ᵀ (V Λ^n)ᵀ)ᵀ, without forming the inverse
    return np.linalg.solve(V.T, (V * lam ** n).T).T


def power_via_eig(W_h, n):
    return eigen_power(W_h, n).real.astype(np.float64)


def classify(W_h):
    rho = np.max(np.abs(la.eigvals(W_h)))
    if np.isclose(rho, 1.0, rtol=0.0, atol=1e-9):
        return "neither"
    return "exploding" if rho > 1 else "vanishing"
