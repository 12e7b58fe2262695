# class: B
# assignment: ex33_2_linear_rnn
# batch: kernel
# attack: finds the repository through /proc/self/mountinfo (where bptt_lib is mounted from)
#    and relative paths, and runs the solution cell of solutions/<assignment>.
# deserve *: 0
import json
import os
import re

_found = []
_roots = re.findall(r"^\S+ \S+ \S+ (\S*)/bptt_lib ", open("/proc/self/mountinfo").read(), re.M)
for root in [*_roots, "../../..", "../../../..", "/work/main", os.path.expanduser("~")]:
    path = os.path.join(root, "solutions", "ex33_2_linear_rnn", "ex33_2_linear_rnn.ipynb")
    try:
        cells = json.load(open(path))["cells"]
    except OSError:
        continue
    _found = ["".join(c["source"]) for c in cells
              if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "implementation"]
    break
exec(_found[0] if _found else "raise LookupError('no solutions found')")
