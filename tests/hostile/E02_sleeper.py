# class: E
# assignment: ex33_2_linear_rnn
# batch: slow
# attack: five cells before the set-up cell sleep 28 s each (under the 30 s cell timeout), to
#    hold a worker for 140 s; assumes a per-notebook deadline below that (a normal notebook of
#    this assignment needs a few seconds), so no grade cell runs.
# deserve *: full
#    (140 s of sleep is within the notebook deadline of 300 s, after which it answers
#    honestly; the batch and the classmate must not wait for it: checked by the batch tests)
# %% before setup_2
import time

time.sleep(28)
# %% before setup_2
import time

time.sleep(28)
# %% before setup_2
import time

time.sleep(28)
# %% before setup_2
import time

time.sleep(28)
# %% before setup_2
import time

time.sleep(28)
