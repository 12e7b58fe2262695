# classify compares ρ with 1 exactly: wrong for ρ = 1 up to rounding.
# expect test_classify: 0 | ρ = 1 up to rounding
# hint test_classify: rounding
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
    return "vanishing" if rho < 1 else "exploding" if rho > 1 else "neither"
