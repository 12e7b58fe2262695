"""Tools for grading a whole class: sandboxed student kernels and parallel autograding."""
