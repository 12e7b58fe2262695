# class: C
# assignment: ex33_2_linear_rnn
# batch: method
# attack: "via eig": eig's result unused, W^n from np.linalg.matrix_power.__call__ (issue 23:
#    the old check saw no call of matrix_power). Right values; held for the instructor.
# deserve test_eig: 0
# deserve *: full
# held: test_eig
def linear_jacobian_product(W_h, k, t):
    P = np.eye(len(W_h))
    for _ in range(t - k):
        P = W_h @ P
    return P


def power_via_eig(W_h, n):
    lam, V = np.linalg.eig(W_h)
    return np.linalg.matrix_power.__call__(W_h, n)


def classify(W_h):
    rho = np.abs(np.linalg.eigvals(W_h)).max()
    return "vanishing" if rho < 1 - 1e-9 else "exploding" if rho > 1 + 1e-9 else "neither"
