# the product stops one factor early (range(k + 1, t)).
# expect test_jacobian: 0 | factors (j = k+1 .. t)
# hint test_jacobian: power_short
def linear_jacobian_product(W_h, k, t):
    P = np.eye(len(W_h))
    for _ in range(k + 1, t):
        P = W_h @ P
    return P

def power_via_eig(W_h, n):
    lam, V = np.linalg.eig(W_h)
    return (V @ np.diag(lam ** n) @ np.linalg.inv(V)).real


def classify(W_h):
    rho = np.abs(np.linalg.eigvals(W_h)).max()
    if rho < 1 - 1e-9:
        return "vanishing"
    if rho > 1 + 1e-9:
        return "exploding"
    return "neither"

