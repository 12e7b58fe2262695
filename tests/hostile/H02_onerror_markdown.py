# class: H
# assignment: ex33_2_linear_rnn
# batch: kernel
# attack: answers honestly; its discussion holds an <img onerror=...> handler.
# deserve *: full
# %% markdown discussion
# hostileH02 decides it. <img src="x" onerror="/* hostileH02 */ fetch('/formgrader/api/')">
