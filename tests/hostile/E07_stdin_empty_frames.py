# class: E
# assignment: ex33_2_linear_rnn
# batch: mem
# attack: issue 23: answers honestly, then for 20 s sends messages of a million empty parts
#    (2 bytes each on the wire, ~100 bytes each as a part in the grader) on the stdin channel:
#    a byte count never stops them.
# deserve *: full
# deserve test_eig: 0
# held: test_eig
# %% append
import time

kernel = get_ipython().kernel
peer = kernel._parent_ident["shell"]
end = time.monotonic() + 20
while time.monotonic() < end:
    try:
        kernel.stdin_socket.send_multipart([*peer, *[b""] * 10**6])
    except KeyboardInterrupt:  # the grader interrupts the cell at the first dropped message
        pass
