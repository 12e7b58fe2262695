# classify by the real parts of the eigenvalues.
# expect test_classify: 0 | complex eigenvalues count by their modulus
# hint test_classify: real_part
def linear_jacobian_product(W_h, k, t):
    P = np.eye(len(W_h))
    for _ in range(t - k):
        P = W_h @ P
    return P


def power_via_eig(W_h, n):
    lam, V = np.linalg.eig(W_h)
    return (V @ np.diag(lam ** n) @ np.linalg.inv(V)).real


def classify(W_h):
    rho = np.abs(np.linalg.eigvals(W_h).real).max()
    return "vanishing" if rho < 1 - 1e-9 else "exploding" if rho > 1 + 1e-9 else "neither"
