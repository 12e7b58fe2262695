# class: B
# assignment: ex33_4_manual_bptt
# batch: replay
# attack: the answer cell shows a display with an id; forward, called on hidden inputs, updates
#    that display with them: the update lands in the answer cell, above every grade cell, whose
#    outputs the feedback shows. A second display id made by forward itself is updated from
#    the last cell (it would land in a grade cell's verdict).
# deserve *: full
from IPython.display import display, update_display

display("placeholder", display_id="leak")

def forward(params, xs):
    update_display(repr(xs.tolist()), display_id="leak")
    display(repr(params["W_h"].tolist()), display_id="inside")
    hs = [np.zeros(len(params["b_h"]))]
    for x in xs:
        hs.append(np.tanh(params["W_h"] @ hs[-1] + params["W_x"] @ x + params["b_h"]))
    return np.array(hs)


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
update_display(repr(["late", "update"]), display_id="inside")
