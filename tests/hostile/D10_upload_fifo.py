# class: D
# assignment: ex33_2_linear_rnn
# batch: hang
# attack: answers honestly; the upload also holds a named pipe: copying the submission by
#    reading every file blocks forever.
# deserve *: full
# %% fifo data.csv
