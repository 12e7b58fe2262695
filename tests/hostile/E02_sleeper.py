# class: E
# assignment: ex33_2_linear_rnn
# batch: slow
# attack: five cells before the set-up cell sleep 28 s each (under the 30 s cell timeout), to
#    hold a worker for 140 s; assumes a per-notebook deadline below that (a normal notebook of
#    this assignment needs a few seconds), so no grade cell runs.
# deserve *: 0
#    (140 s of sleep passes the notebook deadline of 60 s, issue 23: the kernel is killed
#    there and no grade cell runs; the batch and the classmate must not wait for it: checked
#    by the batch tests)
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
