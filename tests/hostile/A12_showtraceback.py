# class: A
# assignment: ex33_4_manual_bptt
# batch: kernel
# attack: replaces the shell's showtraceback, so a failed check leaves no error output;
#    answers nothing.
# deserve *: 0
get_ipython().showtraceback = lambda *args, **kwargs: None
get_ipython()._showtraceback = lambda *args, **kwargs: None


def forward(params, xs):
    raise NotImplementedError()


def backward(params, xs, hs, target):
    raise NotImplementedError()
