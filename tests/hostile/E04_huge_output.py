# class: E
# assignment: ex33_2_linear_rnn
# batch: mem
# attack: answers honestly, then a last cell publishes one 500 MB display message: a grader
#    that decodes a message before limiting it needs gigabytes.
# deserve *: full
# %% append
from IPython.display import publish_display_data

publish_display_data({"text/plain": "x" * 500_000_000})
