"""The untrusted side of grading: the only grading code that runs in the student's kernel.

It calls the student's functions on the inputs it is sent and displays what they returned, as
plain data, in one output of type MIME. It decides nothing — no reference, tolerance or verdict
is here — so whatever a submission does to it can only change the values sent, and values are
judged outside the kernel (`course_tools.verdicts`; `bptt_grading.judge`).

    answer(request)   request: JSON text, {"name" | "handle", "args", "kwargs", "stand_in": [names]}
"""

import json
import sys
from contextlib import contextmanager
from types import FunctionType

MIME = "text/vnd.bptt-answer+json"
MAX_ITEMS = 100_000   # numbers per answer, at most: a grade needs far fewer
_handles = []         # callables the student's functions returned, by position


def _torch():
    return sys.modules.get("torch")  # never imported here: only if the notebook did


def encode(value, budget=None):
    """`value` as JSON-able data: numbers, strings and None as themselves; containers, arrays,
    tensors, callables and other objects as {"type": …}."""
    budget = budget if budget is not None else [MAX_ITEMS]
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueError(f"the answer holds more than {MAX_ITEMS} values")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    np, torch = sys.modules.get("numpy"), _torch()
    if np is not None and isinstance(value, np.ndarray | np.generic):
        return _array("ndarray", str(value.dtype), value.shape, value, budget)
    if torch is not None and isinstance(value, torch.Tensor):
        value = value.detach()
        return _array("tensor", str(value.dtype).removeprefix("torch."), value.shape, value,
                      budget)
    if isinstance(value, list | tuple):
        return {"type": type(value).__name__ if type(value) in (list, tuple) else "tuple",
                "items": [encode(v, budget) for v in value]}
    if isinstance(value, dict):
        return {"type": "dict", "items": [[encode(k, budget), encode(v, budget)]
                                          for k, v in value.items()]}
    if callable(value):
        _handles.append(value)
        return {"type": "callable", "handle": len(_handles) - 1}
    attrs = {k: v for k, v in getattr(value, "__dict__", {}).items() if not k.startswith("_")}
    return {"type": "object", "class": type(value).__name__,
            "attrs": {k: encode(v, budget) for k, v in attrs.items()}}


def _array(kind, dtype, shape, value, budget):
    budget[0] -= value.numel() if kind == "tensor" else value.size
    if budget[0] < 0:
        raise ValueError(f"the answer holds more than {MAX_ITEMS} values")
    if "complex" in dtype:
        data = [value.real.tolist(), value.imag.tolist()]
    else:
        data = value.tolist() if dtype != "object" else None
    return {"type": kind, "dtype": dtype, "shape": list(shape), "data": data}


def decode(value):
    """An input as sent by the grader: {"type": "ndarray"} as a NumPy array, {"type": "params"}
    as a list (or a generator) of torch Parameters with .grad set; the rest as it is."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if value.get("type") == "ndarray":
        import numpy as np
        return np.array(value["data"], dtype=value["dtype"]).reshape(value["shape"])
    if value.get("type") == "params":
        import torch
        params = []
        for p in value["items"]:
            dtype = getattr(torch, p["dtype"])
            params.append(torch.nn.Parameter(torch.tensor(p["data"], dtype=dtype)))
            if p["grad"] is not None:
                params[-1].grad = torch.tensor(p["grad"], dtype=dtype)
        value["objects"] = params
        return (p for p in params) if value["as_generator"] else params
    return {k: decode(v) for k, v in value.items()}


def stand_in_33_5(*args, **kwargs):
    """What 33.5's compare_runs is graded with in place of the student's rescale_grad_norm:
    g ← (θ/2)·g, returning ‖g‖ before (not a rescaling), so only compare_runs counts. θ is the
    first argument, whatever its name (1.0, the notebook's THETA, without one)."""
    import torch

    theta = next(iter((*args, *kwargs.values())), 1.0)

    def transform(parameters):
        grads = [p.grad for p in parameters if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        for g in grads:
            g.mul_(theta / 2)
        return norm
    return transform


@contextmanager
def standing_in(namespace: dict, names: list):
    """`stand_in_33_5` in place of the functions `names` of `namespace` while in the block: the
    names rebound, and the code of each function object replaced, so that every other reference
    to it (a table, a default argument, a partial, a closure) runs the stand-in too."""
    own = {name: namespace.get(name) for name in names}
    code = {fn: fn.__code__ for fn in own.values() if isinstance(fn, FunctionType)
            and not fn.__code__.co_freevars}
    namespace.update(dict.fromkeys(own, stand_in_33_5))
    for fn in code:
        fn.__code__ = stand_in_33_5.__code__
    try:
        yield
    finally:
        for fn, original in code.items():
            fn.__code__ = original
        namespace.update(own)


def call(request: dict, namespace: dict):
    """Run one request against the notebook's `namespace`: {"value": …} with what the function
    returned, or {"raised": type, "message": …, "classes": its type's MRO}; "params" the .grad
    of any Parameters sent."""
    args = [decode(a) for a in request.get("args", [])]
    kwargs = {k: decode(v) for k, v in request.get("kwargs", {}).items()}
    sent = [a for a in request.get("args", []) if isinstance(a, dict) and "objects" in a]
    if "handle" in request:
        fn = _handles[request["handle"]]
    elif request["name"] not in namespace:
        return {"missing": request["name"]}
    else:
        fn = namespace[request["name"]]
    torch = _torch()
    if torch is not None:
        torch.set_num_threads(1)  # the references' arithmetic: graded runs are comparable
    try:
        with standing_in(namespace, request.get("stand_in", [])):
            out = {"value": encode(fn(*args, **kwargs))}
    except BaseException as e:  # noqa: BLE001 — KeyboardInterrupt is the cell's time limit
        out = {"raised": type(e).__name__, "message": str(e)[:2000],
               "classes": [c.__name__ for c in type(e).__mro__]}  # a ValueError subclass too
    out["params"] = [[encode(p.grad) if p.grad is not None else None for p in a["objects"]]
                     for a in sent]
    return out


def answer(request: str) -> None:
    """Display the result of `call` for the JSON `request`, as one output of type MIME."""
    from IPython import get_ipython
    from IPython.display import display

    try:
        out = json.dumps(call(json.loads(request), get_ipython().user_ns))
    except (ValueError, TypeError, RecursionError) as e:
        out = json.dumps({"raised": type(e).__name__, "message": str(e)[:2000]})
    display({MIME: out}, raw=True)
