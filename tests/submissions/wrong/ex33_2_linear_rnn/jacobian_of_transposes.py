# The Jacobian product built from W_hᵀ (the factor of a vector-Jacobian product): its transpose.
# expect test_jacobian: 0 | It equals the transpose of the right answer: check W_h against W_hᵀ.
# hint test_jacobian: transpose
def linear_jacobian_product(W_h, k, t):
    P = np.eye(len(W_h))
    for _ in range(k, t):
        P = P @ W_h.T
    return P


def power_via_eig(W_h, n):
    lam, V = np.linalg.eig(W_h)
    return (V @ np.diag(lam ** n) @ np.linalg.inv(V)).real


def classify(W_h):
    rho = np.abs(np.linalg.eigvals(W_h)).max()
    return "vanishing" if rho < 1 - 1e-9 else "exploding" if rho > 1 + 1e-9 else "neither"
