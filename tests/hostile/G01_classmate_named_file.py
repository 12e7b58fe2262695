# class: G
# assignment: ex33_2_linear_rnn
# batch: g
# attack: answers honestly; its LMS upload also holds an empty notebook named
#    <classmate>--ex33_2_linear_rnn.ipynb, to replace the classmate's submission or make
#    collection abort ("Duplicate submission file") for everyone.
# deserve *: full
# %% zip-extra {classmate}--ex33_2_linear_rnn.ipynb
raise NotImplementedError()
