"""The grading code that students and graded kernels get; the trust boundary runs through it:

  inkernel    UNTRUSTED side — the only grading code a graded kernel runs: calls the student's
              functions on the inputs it is sent and sends back the values. Decides nothing.
  judge       the verdicts: pure comparisons of those values with references, and the
              feedback that names the mistake.
  selfcheck   the student's public self-checks: inkernel + judge, in-process, against the
              references of the public seeds (public_references.json, data).

The trusted side that grades — hidden inputs per student from the course secret, the references
computed for them (course_tools/references.py), the channel to the sandboxed kernel, the verdicts
written into the notebook — is in course_tools, in the grader, never in a kernel nor in the
package students install (this one, for the self-checks).
"""
