# class: D
# assignment: ex33_2_linear_rnn
# batch: d
# attack: answers honestly, and leaves 12 sparse files of 60 MiB each (no disk used in the
#    sandbox): a grader that copies the directory back turns them into 720 MiB of real bytes.
# deserve *: full
# %% append
for i in range(12):
    with open(f"sparse{i}.bin", "wb") as f:
        f.truncate(60 * 2**20)
