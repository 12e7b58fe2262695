# class: F
# assignment: ex33_2_linear_rnn
# batch: f
# attack: answers honestly; the upload also holds a timestamp.txt that is not a date.
# deserve *: full
# %% file timestamp.txt
# the day after tomorrow, 25:61
