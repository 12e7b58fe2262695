# class: D
# assignment: ex33_2_linear_rnn
# batch: hang
# attack: answers honestly, and leaves link loops (a -> ., b -> ..) in its working directory:
#    a grader that walks it following links never ends.
# deserve *: full
# %% append
import os

os.symlink(".", "a")
os.symlink("..", "b")
