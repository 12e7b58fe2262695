# class: A
# assignment: ex33_1_wx_gradient
# batch: kernel
# attack: a post_run_cell hook sends clear_output (the failed check's error output is
#    wiped) and clears error_in_exec; answers nothing.
# deserve *: 0
from IPython.display import clear_output


def _wipe(result):
    if result.error_in_exec is not None:
        clear_output()
        result.error_in_exec = None


get_ipython().events.register("post_run_cell", _wipe)


def deltas(params, xs, target):
    raise NotImplementedError()


def grad_W_x(params, xs, target):
    raise NotImplementedError()


def contribution_norms(params, xs, target):
    raise NotImplementedError()
