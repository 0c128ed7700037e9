(function () {
  "use strict";
  var root = document.querySelector("[data-progress-url]");
  if (!root) { return; }
  var url = root.getAttribute("data-progress-url");
  var shown = root.getAttribute("data-progress-key");
  var delay = 1000;
  var waited = 0;
  function keyOf(answer) {
    return answer.status + "|" + answer.preview.state + "|" + answer.sync.state;
  }
  function later() {
    waited += delay;
    if (waited > 900000) { return; }
    delay = Math.min(delay * 1.5, 15000);
    window.setTimeout(check, delay);
  }
  function check() {
    window.fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (response.status === 401 || response.status === 403) { throw new Error("signed out"); }
        return response.ok ? response.json() : null;
      })
      .then(function (answer) {
        if (answer && keyOf(answer) !== shown) { window.location.reload(); } else { later(); }
      })
      .catch(function () { return undefined; });
  }
  window.setTimeout(check, delay);
})();
