# class: A
# assignment: ex33_4_manual_bptt
# batch: kernel
# attack: set_custom_exc swallows every exception without a traceback, and a post_run_cell
#    hook clears error_in_exec so the reply says "ok"; answers nothing.
# deserve *: 0
ip = get_ipython()
ip.set_custom_exc((BaseException,), lambda shell, etype, value, tb, tb_offset=None: None)


def _clear(result):
    result.error_in_exec = None
    result.error_before_exec = None


ip.events.register("post_run_cell", _clear)


def forward(params, xs):
    raise NotImplementedError()


def backward(params, xs, hs, target):
    raise NotImplementedError()
