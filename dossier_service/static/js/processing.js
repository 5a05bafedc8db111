/*
 * Live processing state: while a version is pending or being processed, ask the server
 * every few seconds and update its badge. Stops when nothing is pending, or after ten
 * minutes (the polling does not keep the session alive; the server ignores it for that).
 */
(function () {
  "use strict";
  var INTERVAL_MS = 2000;
  var MAX_POLLS = 300;

  document.querySelectorAll("[data-processing-url]").forEach(function (box) {
    var pending = (box.getAttribute("data-pending") || "").split(" ").filter(Boolean);
    var polls = 0;
    if (!pending.length) { return; }

    function poll() {
      polls += 1;
      var query = pending.map(function (id) { return "v=" + encodeURIComponent(id); }).join("&");
      fetch(box.getAttribute("data-processing-url") + "?" + query, {
        headers: { "Accept": "application/json" },
        credentials: "same-origin"
      })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (body) {
          if (!body) { return; }
          pending = pending.filter(function (id) {
            var info = body.versions[id];
            if (!info) { return false; }
            document.querySelectorAll('[data-version-state="' + id + '"]').forEach(function (badge) {
              badge.textContent = info.label;
              badge.className = "badge state-" + info.state;
              if (info.error) { badge.title = info.error; }
            });
            return info.state === "pending" || info.state === "processing";
          });
        })
        .catch(function () { /* a missed poll is retried */ })
        .then(function () {
          if (pending.length && polls < MAX_POLLS) { window.setTimeout(poll, INTERVAL_MS); }
        });
    }
    window.setTimeout(poll, INTERVAL_MS);
  });
})();
