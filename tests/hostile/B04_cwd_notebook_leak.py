# class: B
# assignment: ex33_2_linear_rnn
# batch: kernel
# attack: answers honestly, then prints every notebook and file found in the kernel's working
#    directory (nbgrader leaves the notebook with the hidden tests restored there).
# deserve *: full
# %% append
import glob
import json

for path in glob.glob("*") + glob.glob(".*"):
    try:
        nb = json.load(open(path))
        print(path, *("".join(c["source"]) for c in nb["cells"]), sep="\n")
    except Exception as e:  # noqa: BLE001
        print(path, type(e).__name__)
