# class: A
# assignment: ex33_2_linear_rnn
# batch: kernel
# attack: wraps the kernel's Session.send: error messages are dropped and failed
#    execute_replies rewritten to "ok"; answers nothing.
# deserve *: 0
_session = get_ipython().kernel.session
_send = _session.send


def _forged(stream, msg_or_type, content=None, *args, **kwargs):
    kind = msg_or_type if isinstance(msg_or_type, str) else msg_or_type["header"]["msg_type"]
    if kind == "error":
        return None
    if kind == "execute_reply" and isinstance(content, dict) and content.get("status") == "error":
        content = {"status": "ok", "execution_count": content.get("execution_count"),
                   "user_expressions": {}, "payload": []}
    return _send(stream, msg_or_type, content, *args, **kwargs)


_session.send = _forged


def linear_jacobian_product(W_h, k, t):
    raise NotImplementedError()


def power_via_eig(W_h, n):
    raise NotImplementedError(np.linalg.eig)


def classify(W_h):
    raise NotImplementedError()
