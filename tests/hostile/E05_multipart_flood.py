# class: E
# assignment: ex33_2_linear_rnn
# batch: mem
# attack: answers honestly, then a last cell sends one iopub message of 200 parts of 7 MiB each
#    (1.4 GB): every part is under the 8 MiB cap, and ZMQ delivers a message's parts together.
# deserve *: full
# deserve test_eig: 0
# held: test_eig
# %% append
part = b"x" * (7 << 20)
get_ipython().kernel.iopub_socket.send_multipart([part] * 200)
