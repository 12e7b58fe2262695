# class: D
# assignment: ex33_2_linear_rnn
# batch: hang
# attack: answers honestly, and leaves a named pipe in its working directory: a grader that
#    reads the directory back blocks on it forever.
# deserve *: full
# %% append
import os

os.mkfifo("pipe")
