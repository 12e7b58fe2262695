# class: C
# assignment: ex33_2_linear_rnn
# batch: method
# attack: "via eig": np.linalg.eig called and its result discarded, W^n by repeated products
#    (issue 23: 6/6, deserved 4). Right values; held for the instructor.
# deserve test_eig: 0
# deserve *: full
# held: test_eig
def linear_jacobian_product(W_h, k, t):
    P = np.eye(len(W_h))
    for _ in range(t - k):
        P = W_h @ P
    return P


def power_via_eig(W_h, n):
    np.linalg.eig(W_h)
    P = np.eye(len(W_h))
    for _ in range(n):
        P = P @ W_h
    return P


def classify(W_h):
    rho = np.abs(np.linalg.eigvals(W_h)).max()
    return "vanishing" if rho < 1 - 1e-9 else "exploding" if rho > 1 + 1e-9 else "neither"
