# class: E
# assignment: ex33_2_linear_rnn
# batch: mem
# attack: five forked children touch 1 GiB each at once (5 GiB, against a 4 GiB limit that is
#    per process); the answer is defined only if all five hold their memory at once (each has
#    said it got it, and none has died since: the OOM killer may pick a child that already
#    said so), i.e. only if the limit does not cover children.
# deserve *: 0
import os
import time

_pipes, _children = [], []
for _ in range(5):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            block = np.ones(2**27)  # 1 GiB, written
            os.write(w, b"1")
            time.sleep(20)
        finally:
            os._exit(0)
    _pipes.append(r)
    _children.append(pid)
_said = sum(os.read(r, 1) == b"1" for r in _pipes)
time.sleep(2)  # a child killed for the last one's memory is gone by now
_held = sum(os.waitpid(pid, os.WNOHANG) == (0, 0) for pid in _children) if _said == 5 else 0
print("children holding 1 GiB:", _held)
if _held == 5:
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
