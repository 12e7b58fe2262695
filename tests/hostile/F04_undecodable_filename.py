# class: F
# assignment: ex33_2_linear_rnn
# batch: f
# attack: answers honestly, and leaves files in its working directory whose names are not
#    UTF-8 and that are huge in number (5000), for a grader that reads the directory back.
# deserve *: full
# %% append
open(b"\xff\xfe-not-utf8", "wb").write(b"x")
for i in range(5000):
    open(f"f{i}", "w").close()
