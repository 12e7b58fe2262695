# class: B
# assignment: ex33_4_manual_bptt
# batch: replay
# attack: forward hands its inputs to a thread that keeps printing them (stdout, stderr, HTML
#    displays) for the next seconds, while the grader goes on with later cells; an added last
#    cell sleeps so that those outputs have a cell to land in. (Its `import sys`, for stderr,
#    is method evidence: backward's cells are held for the instructor, "The method policy".)
# deserve *: 0
# deserve test_forward: full
# held: test_W_y test_h test_W_h test_W_x test_b_h
import sys
import threading
import time

from IPython.display import HTML, display

def forward(params, xs):
    threading.Thread(target=_shout, args=(repr(xs.tolist()),), daemon=True).start()
    hs = [np.zeros(len(params["b_h"]))]
    for x in xs:
        hs.append(np.tanh(params["W_h"] @ hs[-1] + params["W_x"] @ x + params["b_h"]))
    return np.array(hs)


def _shout(text):
    for _ in range(20):
        print(text)
        print(text, file=sys.stderr)
        display(HTML(f"<pre>{text}</pre>"))
        time.sleep(0.1)


def backward(params, xs, hs, target):
    T = len(xs)
    y = params["W_y"] @ hs[T] + params["b_y"]
    dy = np.exp(y - y.max())
    dy /= dy.sum()
    dy[target] -= 1
    g = {k: np.zeros_like(params[k]) for k in ("W_x", "W_h", "b_h")}
    g["W_y"], g["b_y"] = np.outer(dy, hs[T]), dy
    g["h"] = np.zeros((T, len(params["b_h"])))
    d = params["W_y"].T @ dy
    for t in range(T, 0, -1):
        g["h"][t - 1] = d
        dz = d * (1 - hs[t] ** 2)
        g["W_h"] += np.outer(dz, hs[t - 1])
        g["W_x"] += np.outer(dz, xs[t - 1])
        g["b_h"] += dz
        d = params["W_h"].T @ dz
    return g

# %% append
time.sleep(3)
