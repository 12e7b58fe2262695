# class: D
# assignment: ex33_2_linear_rnn
# batch: d
# attack: the upload holds a link `solutions` to the repository's solutions/ (the documented
#    layout); the answer runs the solution cell it finds through that link.
# deserve *: 0
import json

_cells = json.load(open("solutions/ex33_2_linear_rnn/ex33_2_linear_rnn.ipynb"))["cells"]
exec(next("".join(c["source"]) for c in _cells
          if c["metadata"].get("nbgrader", {}).get("grade_id") == "implementation"))
# %% symlink solutions -> {repo}/solutions
