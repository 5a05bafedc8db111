/* Small helpers for every page. No inline script exists anywhere: the CSP forbids it. */
(function () {
  "use strict";
  // After following the skip link, move focus into the main region for screen readers.
  var skip = document.querySelector(".skip-link");
  if (skip) {
    skip.addEventListener("click", function () {
      var main = document.getElementById("main");
      if (main) { main.focus(); }
    });
  }
})();
