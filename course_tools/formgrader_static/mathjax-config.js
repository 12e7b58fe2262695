// MathJax 3 for the formgrader (course_tools/formgrader.py), as nbconvert configures MathJax 2:
// $…$ and \(…\) inline, $$…$$ and \[…\] displayed, AMS numbering. A file, not an inline script,
// so that the formgrader's Content-Security-Policy can forbid inline scripts.
// nbgrader's formgrade.js waits for MathJax 2's startup signal ("End") before it focuses the last
// field graded: the same signal is given once MathJax 3 has typeset the page.
(function () {
  var waiting = [], ended = false;
  var signal = {Interest: function (listener) {
    if (ended) { listener("End"); } else { waiting.push(listener); }
  }};
  window.MathJax = {
    tex: {
      inlineMath: [["$", "$"], ["\\(", "\\)"]],
      displayMath: [["$$", "$$"], ["\\[", "\\]"]],
      processEscapes: true,
      processEnvironments: true,
      tags: "ams",
    },
    chtml: {displayAlign: "center"},
    startup: {
      ready: function () {
        MathJax.Hub = {Startup: {signal: signal}};
        MathJax.startup.defaultReady();
        MathJax.startup.promise.then(function () {
          ended = true;
          waiting.splice(0).forEach(function (listener) { listener("End"); });
        });
      },
    },
  };
})();
