# class: H
# assignment: ex33_2_linear_rnn
# batch: kernel
# attack: answers honestly; its discussion (a manually graded markdown cell) holds a
#    <script> that would run in the instructor's formgrader (same origin as /api).
# deserve *: full
# %% markdown discussion
# The gradient scales like lambda_i^(t-k).
# <script>/* hostileH01 */ fetch("/api/kernels", {method: "POST"});</script>
