# class: G
# assignment: ex33_2_linear_rnn
# batch: g
# attack: answers honestly; its upload also holds `..--ex33_2_linear_rnn.ipynb` (student id
#    ".."), which would land in the course directory itself.
# deserve *: full
# %% zip-extra ..--ex33_2_linear_rnn.ipynb
raise NotImplementedError()
