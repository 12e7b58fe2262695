# class: F
# assignment: ex33_2_linear_rnn
# batch: slow
# attack: answers honestly, then a cell before the grade cells loops forever and swallows
#    every KeyboardInterrupt (the cell timeout's interrupt): the kernel never becomes free, so
#    every later cell waits its full timeout; the notebook must cost only itself.
# deserve *: 0
# %% before test_jacobian
import time

while True:
    try:
        time.sleep(3600)
    except KeyboardInterrupt:
        pass
