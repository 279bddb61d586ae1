/* No lost place: the need page's forms (offer, revise, withdraw, message, accept, rate) and its
   sort tabs work without a full reload. The form's own POST is sent with fetch and the header
   "X-Swap: 1"; the server answers as it always does (a redirect to the page, or the page again
   with the form's errors) and the part that changed (#live-need) is swapped in, focus and
   scroll kept, the outcome read out in a live region. An answer that is another page is
   followed. Without JavaScript the forms post as before; a confirmation (app.js, capture
   phase) runs first and re-submits through here. */
(function () {
  "use strict";
  const root = document.querySelector("[data-swap-root]");
  if (!root || !window.fetch || !window.DOMParser) return;
  const status = document.getElementById("swap-status");

  function say(text) {
    if (!status) return;
    status.textContent = "";
    if (!text) return;
    const p = document.createElement("p");
    p.className = "flash";
    p.textContent = text;
    status.appendChild(p);
  }

  // Where the reader is: the focused element (by id, else by its form's action and name) and
  // the nearest part with an id, with its distance from the top of the screen.
  function place(from) {
    const active = document.activeElement;
    const form = (from && from.form) || (from instanceof HTMLFormElement ? from : null) || (active && active.form);
    // The part the form sits in (a field's own id may be gone once the form closes).
    const anchor = ((form && form.parentElement) || from || active || root).closest("[id]") || root;
    return {
      formTop: form ? form.getBoundingClientRect().top : null,
      id: active && active.id,
      action: form ? form.getAttribute("action") : null,
      name: active && active.getAttribute("name"),
      href: active && active.tagName === "A" ? active.getAttribute("href") : null,
      anchor: anchor.id,
      top: anchor.getBoundingClientRect().top,
    };
  }

  function restore(where) {
    const anchor = document.getElementById(where.anchor);
    const form = where.action && root.querySelector('form[action="' + CSS.escape(where.action) + '"]');
    const shown = form && !form.closest("details:not([open])") && form.getClientRects().length;
    if (shown && where.formTop !== null) window.scrollBy(0, form.getBoundingClientRect().top - where.formTop);
    else if (anchor) window.scrollBy(0, anchor.getBoundingClientRect().top - where.top);
    const summary = root.querySelector("[data-error-summary]");
    let target = summary;
    if (!target && where.id) target = document.getElementById(where.id);
    if (!target && where.href) target = root.querySelector('a[href="' + CSS.escape(where.href) + '"]');
    if (!target && shown) {  // the same form, if it is still in view
      target = (where.name && form.querySelector('[name="' + CSS.escape(where.name) + '"]:not([type=hidden])'))
        || form.querySelector("button[type=submit], button");
    }
    if (!target && anchor) {  // the form is gone (an offer withdrawn): its part keeps focus
      if (!anchor.hasAttribute("tabindex")) anchor.setAttribute("tabindex", "-1");
      target = anchor;
    }
    if (target) {
      const details = target.closest("details");
      if (details) details.open = true;
      target.focus({ preventScroll: true });
    }
  }

  function swapIn(html, where) {
    const doc = new DOMParser().parseFromString(html, "text/html");
    const fresh = doc.getElementById(root.id);
    if (!fresh) return false;
    root.innerHTML = fresh.innerHTML;
    if (window.Nearby && window.Nearby.setTimeZones) window.Nearby.setTimeZones(root);
    if (window.Nearby && window.Nearby.drawMaps) window.Nearby.drawMaps(root);
    root.querySelectorAll(".bubbles").forEach(function (b) { b.scrollTop = b.scrollHeight; });
    const flashes = Array.from(doc.querySelectorAll(".flashes .flash")).map(function (f) { return f.textContent.trim(); });
    const summary = root.querySelector("[data-error-summary]");
    say(flashes.join(" ") || (summary ? summary.textContent.trim() : "Updated."));
    restore(where);  // after the status region grew: it is above everything
    document.dispatchEvent(new CustomEvent("mkt:swapped"));
    return true;
  }

  function load(url, init, where) {
    root.setAttribute("aria-busy", "true");
    return fetch(url, Object.assign({ credentials: "same-origin", headers: { "X-Swap": "1", Accept: "text/html" } }, init))
      .then(function (response) {
        return response.text().then(function (html) {
          const landed = new URL(response.url, location.href);
          const here = !response.redirected || landed.pathname === location.pathname;
          if (response.ok && here && swapIn(html, where)) {
            return response.redirected || init.method === "GET" ? landed : null;
          }
          // Another page (or an error page): show it as a plain post would have.
          if (response.ok && !here) location.assign(response.url);
          else { document.open(); document.write(html); document.close(); }
          return null;
        });
      })
      .finally(function () { root.removeAttribute("aria-busy"); });
  }

  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (event.defaultPrevented || !(form instanceof HTMLFormElement) || !root.contains(form)
        || (form.method || "").toLowerCase() !== "post") return;
    event.preventDefault();
    const where = place(event.submitter || form);
    const body = new URLSearchParams(new FormData(form, event.submitter || undefined));
    const buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    load(form.action, { method: "POST", body: body }, where)
      .then(function (landed) {
        if (landed && landed.search !== location.search) history.replaceState(null, "", landed.pathname + landed.search);
      })
      .catch(function () {
        buttons.forEach(function (b) { b.disabled = false; });
        say("That did not go through. Check your connection and try again.");
      });
  });

  // Sorting offers: the tab's page, swapped in, its address kept in the history.
  root.addEventListener("click", function (event) {
    const link = event.target.closest("nav.tabs a[href]");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    const where = place(link);
    load(link.href, { method: "GET" }, where).then(function (landed) {
      if (landed) history.pushState(null, "", landed.pathname + landed.search);
    }).catch(function () { location.assign(link.href); });
  });
  window.addEventListener("popstate", function () { load(location.href, { method: "GET" }, place()); });

  window.Nearby = Object.assign(window.Nearby || {}, { swapIn: swapIn });
})();
