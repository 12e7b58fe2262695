# W_h^n through eig with the eigenvalues raised by exp(n log λ); the real part via np.real.
def linear_jacobian_product(W_h, k, t):
    out = np.identity(len(W_h))
    for _ in range(k + 1, t + 1):
        out = W_h @ out
    return out


def power_via_eig(W_h, n):
    lam, V = np.linalg.eig(W_h.astype(complex))
    powers = np.exp(n * np.log(lam.astype(complex)))
    return np.real(np.linalg.solve(V.T, (V * powers).T).T)


def classify(W_h):
    rho = np.abs(np.linalg.eigvals(W_h)).max()
    if rho > 1 + 1e-9:
        return "exploding"
    if rho < 1 - 1e-9:
        return "vanishing"
    return "neither"
