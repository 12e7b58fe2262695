# W_h^n by np.linalg.matrix_power: right numbers, not the method the contract names.
# expect test_eig: 0 | power_via_eig does not call numpy.linalg.eig
def linear_jacobian_product(W_h, k, t):
    P = np.eye(len(W_h))
    for _ in range(t - k):
        P = W_h @ P
    return P


def power_via_eig(W_h, n):
    return np.linalg.matrix_power(W_h, n)

def classify(W_h):
    rho = np.abs(np.linalg.eigvals(W_h)).max()
    if rho < 1 - 1e-9:
        return "vanishing"
    if rho > 1 + 1e-9:
        return "exploding"
    return "neither"

