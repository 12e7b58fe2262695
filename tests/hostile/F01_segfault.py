# class: F
# assignment: ex33_2_linear_rnn
# batch: f
# attack: the answer cell crashes the kernel (a NULL read through ctypes) before defining
#    anything: only this notebook may suffer.
# deserve *: 0
import ctypes

ctypes.string_at(0)
