# class: F
# assignment: ex33_2_linear_rnn
# batch: f
# attack: answers honestly and adds a grade cell of its own (grade id test_bonus, 100
#    points) that passes: no such cell was released, so it must not score or break the job.
# deserve *: full
# %% grade-cell test_bonus 100
print("bonus")
