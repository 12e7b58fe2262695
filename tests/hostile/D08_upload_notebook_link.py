# class: D
# assignment: ex33_2_linear_rnn
# batch: d
# attack: its submitted notebook is itself a symlink to the classmate's submitted notebook (an
#    upload that keeps links): a grader that follows it grades the classmate's work as its own.
# deserve *: 0
# %% symlink ex33_2_linear_rnn.ipynb -> ../../honest/ex33_2_linear_rnn/ex33_2_linear_rnn.ipynb
