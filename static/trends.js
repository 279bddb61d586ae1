// The trends page: re-read the page every so often (and when a notification arrives) and swap
// the chart region when the answer changed. The server stays the only renderer.
(function () {
  "use strict";
  var region = document.getElementById("trends-region");
  if (!region) return;
  var seconds = parseInt(region.getAttribute("data-refresh"), 10) || 30;
  var busy = false;

  function refresh() {
    if (busy || document.hidden) return;
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("trends-region");
        if (fresh && fresh.innerHTML !== region.innerHTML) {
          region.innerHTML = fresh.innerHTML;
          region.dispatchEvent(new CustomEvent("mkt:trends-updated", { bubbles: true }));
        }
      })
      .catch(function () { /* offline: try again next time */ })
      .then(function () { busy = false; });
  }

  window.setInterval(refresh, seconds * 1000);
  document.addEventListener("visibilitychange", refresh);
  document.addEventListener("mkt:notification", refresh);
})();
