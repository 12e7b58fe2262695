# class: E
# assignment: ex33_2_linear_rnn
# batch: mem
# attack: issue 23: answers honestly, then for 20 s sends messages of a million empty parts on
#    iopub, which the grader reads while the cell runs.
# deserve *: full
# deserve test_eig: 0
# held: test_eig
# %% append
import time

end = time.monotonic() + 20
while time.monotonic() < end:
    try:
        get_ipython().kernel.iopub_socket.send_multipart([b""] * 10**6)
    except KeyboardInterrupt:  # the grader interrupts the cell at the first dropped message
        pass
