# class: D
# assignment: ex33_2_linear_rnn
# batch: hang
# attack: answers honestly; the upload also holds a named pipe: copying the submission by
#    reading every file blocks forever.
# deserve *: 0
#    (a submission holding a link, a special or an oversize file is refused as a whole,
#    before any of it is read; the reason goes to autograde_failures.csv)
# %% fifo data.csv
