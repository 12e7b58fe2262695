# class: A
# assignment: ex33_1_wx_gradient
# batch: kernel
# attack: patches the shell's run_cell / run_cell_async: a cell that mentions the grading
#    checks runs as `pass`; answers nothing.
# deserve *: 0
ip = get_ipython()
_run_cell, _run_cell_async = ip.run_cell, ip.run_cell_async


def _skip(raw_cell):
    return "pass" if "grading" in raw_cell else raw_cell


def run_cell(raw_cell, *args, **kwargs):
    return _run_cell(_skip(raw_cell), *args, **kwargs)


async def run_cell_async(raw_cell, *args, **kwargs):
    kwargs.pop("transformed_cell", None)
    kwargs.pop("preprocessing_exc_tuple", None)
    return await _run_cell_async(_skip(raw_cell), *args, **kwargs)


ip.run_cell, ip.run_cell_async = run_cell, run_cell_async


def deltas(params, xs, target):
    raise NotImplementedError()


def grad_W_x(params, xs, target):
    raise NotImplementedError()


def contribution_norms(params, xs, target):
    raise NotImplementedError()
