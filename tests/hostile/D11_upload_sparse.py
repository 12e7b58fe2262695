# class: D
# assignment: ex33_2_linear_rnn
# batch: d
# attack: answers honestly; the upload also holds a 300 MiB sparse file, which a plain copy
#    into autograded/ and feedback/ makes real.
# deserve *: 0
#    (a submission holding a link, a special or an oversize file is refused as a whole,
#    before any of it is read; the reason goes to autograde_failures.csv)
# %% sparse weights.bin 314572800
