# The honest classmate's 33.2, written from the student notebook: full marks.
def linear_jacobian_product(W_h, k, t):
    P = np.eye(len(W_h))
    for _ in range(t - k):
        P = W_h @ P
    return P


def power_via_eig(W_h, n):
    lam, V = np.linalg.eig(W_h)
    return (V @ np.diag(lam**n) @ np.linalg.inv(V)).real


def classify(W_h):
    rho = np.abs(np.linalg.eigvals(W_h)).max()
    if rho < 1 - 1e-9:
        return "vanishing"
    if rho > 1 + 1e-9:
        return "exploding"
    return "neither"
