# class: D
# assignment: ex33_2_linear_rnn
# batch: d
# attack: answers honestly; the upload also holds a 300 MiB sparse file, which a plain copy
#    into autograded/ and feedback/ makes real.
# deserve *: full
# %% sparse weights.bin 314572800
