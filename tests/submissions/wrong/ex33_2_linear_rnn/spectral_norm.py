# classify by σ_max instead of ρ.
# expect test_classify: 0 | σ_max only bounds a single step
# hint test_classify: sigma
def linear_jacobian_product(W_h, k, t):
    P = np.eye(len(W_h))
    for _ in range(t - k):
        P = W_h @ P
    return P


def power_via_eig(W_h, n):
    lam, V = np.linalg.eig(W_h)
    return (V @ np.diag(lam ** n) @ np.linalg.inv(V)).real


def classify(W_h):
    s = np.linalg.norm(W_h, 2)
    return "vanishing" if s < 1 - 1e-9 else "exploding" if s > 1 + 1e-9 else "neither"
