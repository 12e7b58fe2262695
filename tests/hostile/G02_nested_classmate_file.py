# class: G
# assignment: ex33_2_linear_rnn
# batch: g
# attack: answers honestly; its upload also holds work/<classmate>--ex33_2_linear_rnn.ipynb
#    (a subfolder: the collector matches the whole path).
# deserve *: full
# %% zip-extra work/{classmate}--ex33_2_linear_rnn.ipynb
raise NotImplementedError()
