# classify with np.isclose's default tolerance (~1e-5), far wider than the contract's 1e-9.
# expect test_classify: 0 | your tolerance for "neither" is too wide
# hint test_classify: too_tolerant
def linear_jacobian_product(W_h, k, t):
    P = np.eye(len(W_h))
    for _ in range(t - k):
        P = W_h @ P
    return P


def power_via_eig(W_h, n):
    lam, V = np.linalg.eig(W_h)
    return (V @ np.diag(lam ** n) @ np.linalg.inv(V)).real


def classify(W_h):
    rho = np.abs(np.linalg.eigvals(W_h)).max()
    if np.isclose(rho, 1):
        return "neither"
    return "vanishing" if rho < 1 else "exploding"
