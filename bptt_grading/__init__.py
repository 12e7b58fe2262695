"""Grading of the chapter's exercises, in one place; its trust boundary runs through it:

  inkernel    UNTRUSTED side — the only grading code a graded kernel runs: calls the student's
              functions on the inputs it is sent and sends back the values. Decides nothing.
  judge       the verdicts: pure comparisons of those values with references, and the
              feedback that names the mistake.
  references  the inputs and autograd references per (exercise, seed).
  selfcheck   the student's public self-checks: inkernel + references + judge, in-process.

The trusted side that grades — hidden inputs per student from the course secret, the channel to
the sandboxed kernel, the verdicts written into the notebook — is course_tools/verdicts.py, in
the grader, never in a kernel. Students get this package (for the self-checks), not
course_tools; a graded kernel sees only inkernel (the sandbox hides the rest).
"""
