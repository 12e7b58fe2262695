// MathJax 3 for the formgrader (course_tools/formgrader.py), as nbconvert configures MathJax 2:
// $…$ and \(…\) inline, $$…$$ and \[…\] displayed, AMS numbering. A file, not an inline script,
// so that the formgrader's Content-Security-Policy can forbid inline scripts.
window.MathJax = {
  tex: {
    inlineMath: [["$", "$"], ["\\(", "\\)"]],
    displayMath: [["$$", "$$"], ["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
    tags: "ams",
  },
  chtml: {displayAlign: "center"},
};
