# class: H
# assignment: ex33_2_linear_rnn
# batch: kernel
# attack: answers honestly; a code cell of its own displays text/html output with a <script>
#    (the formgrader shows outputs too).
# deserve *: full
# %% append
from IPython.display import HTML, display

display(HTML("<b>plot hostileH03</b><script>/* hostileH03 */ fetch('/api/kernels')</script>"))
