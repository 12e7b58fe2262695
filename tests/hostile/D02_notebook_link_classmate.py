# class: D
# assignment: ex33_2_linear_rnn
# batch: d
# attack: answers nothing, and replaces its own notebook in the working directory by a link
#    to the classmate's submitted notebook: the grader writing this (0-point) notebook through
#    it would overwrite the classmate's submission.
# deserve *: 0
import os

os.remove("ex33_2_linear_rnn.ipynb")
os.symlink("../../../submitted/honest/ex33_2_linear_rnn/ex33_2_linear_rnn.ipynb",
           "ex33_2_linear_rnn.ipynb")


def linear_jacobian_product(W_h, k, t):
    raise NotImplementedError()


def power_via_eig(W_h, n):
    raise NotImplementedError(np.linalg.eig)


def classify(W_h):
    raise NotImplementedError()
