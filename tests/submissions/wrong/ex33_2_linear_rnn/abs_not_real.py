# np.abs of the complex result instead of its real part: the signs of W_h^n are lost.
# expect test_eig: 0 | W_h^6 via the eigendecomposition is off
def linear_jacobian_product(W_h, k, t):
    return np.linalg.multi_dot([np.eye(len(W_h))] + [W_h] * (t - k) + [np.eye(len(W_h))])


def power_via_eig(W_h, n):
    lam, V = np.linalg.eig(W_h)
    return np.abs(V @ np.diag(lam ** n) @ np.linalg.inv(V))


def classify(W_h):
    rho = max(abs(np.linalg.eigvals(W_h)))
    if abs(rho - 1) <= 1e-9:
        return "neither"
    return "vanishing" if rho < 1 else "exploding"
