# class: B
# assignment: ex33_4_manual_bptt
# batch: replay
# attack: issue 23: an honest forward and backward that record every input they are called
#    with; an added last cell prints them all at full precision, to answer from a table at the
#    next grading.
#    The regrade must draw other inputs, the feedback show none of them
#    (test_a_regrade_draws_new_inputs_and_each_run_is_reproducible).
# deserve *: full
import json

RECORDED = []

def forward(params, xs):
    RECORDED.append({"xs": xs.tolist(), "W_h": params["W_h"].tolist()})
    hs = [np.zeros(len(params["b_h"]))]
    for x in xs:
        hs.append(np.tanh(params["W_h"] @ hs[-1] + params["W_x"] @ x + params["b_h"]))
    return np.array(hs)


def backward(params, xs, hs, target):
    RECORDED.append({"xs": xs.tolist(), "W_h": params["W_h"].tolist(), "target": int(target)})
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
print("RECORDED", json.dumps(RECORDED))
