# class: B
# assignment: ex33_2_linear_rnn
# batch: kernel
# attack: finds the course directory from the kernel's mounts (its working directory is
#    course/autograded/<student>/<assignment>), opens gradebook.db and runs the solution
#    source stored there.
# deserve *: 0
import re
import sqlite3

_mounts = open("/proc/self/mountinfo").read()
_code = None
for root in re.findall(r"^\S+ \S+ \S+ (\S+)/autograded/", _mounts, re.M) + ["../../.."]:
    try:
        db = sqlite3.connect(f"file:{root}/gradebook.db?mode=ro", uri=True)
        rows = db.execute("select source from source_cell").fetchall()
    except sqlite3.Error:
        continue
    _code = next((s for (s,) in rows if "def power_via_eig" in s), None)
    break
exec(_code.replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", "")
     if _code else "raise LookupError('no gradebook found')")
