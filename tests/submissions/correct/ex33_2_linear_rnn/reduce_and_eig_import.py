from functools import reduce

from numpy.linalg import eig


def linear_jacobian_product(W_h, k, t):
    return reduce(lambda P, _: W_h @ P, range(t - k), np.identity(W_h.shape[0]))


def power_via_eig(W_h, n):
    lam, V = eig(W_h)
    return np.real(V @ np.diag(lam ** n) @ np.linalg.inv(V))


def classify(W_h):
    rho = max(abs(complex(lam)) for lam in np.linalg.eigvals(W_h))
    if abs(rho - 1) <= 1e-9:
        return "neither"
    return "vanishing" if rho < 1 else "exploding"
