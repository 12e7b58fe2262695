# class: D
# assignment: ex33_2_linear_rnn
# batch: hang
# attack: answers honestly; the upload also holds a link loop (loop -> .): copying the
#    submission following links never ends.
# deserve *: full
# %% symlink loop -> .
