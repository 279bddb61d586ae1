/* Customer pages: location helpers and the reach preview on the need form; live refresh of the
   need page and of offer counts on "My needs". */
(function () {
  "use strict";

  const setTimeZones = window.Nearby.setTimeZones;  // app.js, loaded first

  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      const source = document.querySelector(button.dataset.copy);
      source.select();
      if (navigator.clipboard) navigator.clipboard.writeText(source.value).catch(function () {});
      button.textContent = "Copied";
    });
  });

  const form = document.getElementById("need-form");
  if (form) {
    const lat = document.getElementById("f-lat");
    const lon = document.getElementById("f-lon");
    const place = document.getElementById("f-place_query");
    const status = document.getElementById("location-status");
    const reach = document.getElementById("reach");
    let timer = null;

    function preview() {
      clearTimeout(timer);
      timer = setTimeout(function () {
        const radius = form.querySelector("[data-radius]");  // radius_km or radius_mi
        const params = new URLSearchParams({
          category: form.category.value, lat: lat.value, lon: lon.value, place_query: place.value,
        });
        params.set(radius.name, radius.value);
        if (!(lat.value && lon.value) && !place.value) return;  // a place alone moves the map
        fetch("/needs/reach?" + params.toString(), { headers: { Accept: "application/json" } })
          .then(function (r) { return r.json(); })
          .then(function (body) {
            if (body.error) { reach.textContent = body.error.message; return; }  // e.g. a 429
            if (body.found) document.dispatchEvent(new CustomEvent("mkt:place-found", { detail: body.found }));
            if (body.count === null) { reach.textContent = body.message; return; }
            const where = body.place ? " near " + body.place : "";
            reach.textContent = body.count === 1
              ? "1 provider is in reach" + where + "."
              : body.count + " providers are in reach" + where + ".";
          })
          .catch(function () { reach.textContent = "Could not check reach right now."; });
      }, 300);
    }

    document.getElementById("use-location").addEventListener("click", function () {
      if (!navigator.geolocation) { status.textContent = "Your browser cannot share a location; type a place instead."; return; }
      status.textContent = "Finding you…";
      navigator.geolocation.getCurrentPosition(function (pos) {
        lat.value = pos.coords.latitude.toFixed(5);
        lon.value = pos.coords.longitude.toFixed(5);
        place.value = "";
        status.textContent = "Using your current location.";
        lat.dispatchEvent(new Event("change", { bubbles: true }));  // moves the map's pin
        preview();
      }, function () {
        status.textContent = "Location not shared. Type a place name or coordinates instead.";
      }, { enableHighAccuracy: false, timeout: 10000 });
    });
    ["change", "input"].forEach(function (type) { form.addEventListener(type, preview); });
    preview();
  }

  function concerns(event, needId) {
    const d = event.detail.data;
    return String(d.need_id || (d.need && d.need.id)) === String(needId);
  }

  const live = document.querySelector("[data-live-need]");
  if (live) {
    const needId = live.dataset.liveNeed;
    document.addEventListener("mkt:need-closed", function (event) {
      if (String(event.detail.need_id) === String(needId)) refresh();
    });
    document.addEventListener("mkt:reconnected", function () { refresh(); });
    document.addEventListener("mkt:notification", function (event) {
      if (!concerns(event, needId)) return;
      event.preventDefault();  // the page itself shows the change; no toast needed
      refresh();
    });
    let timer = null;
    function refresh() {  // once for a burst (a catch-up may bring many at once)
      clearTimeout(timer);
      timer = setTimeout(reread, 200);
    }
    function reread() {
      fetch(location.href, { headers: { Accept: "text/html" } })
        .then(function (r) { return r.text(); })
        .then(function (html) {
          const fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live-need");
          if (!fresh) return;
          const open = Array.from(live.querySelectorAll("details[open][id]")).map(function (d) { return d.id; });
          const typed = {};
          live.querySelectorAll("textarea[id], input[id]:not([type=hidden])").forEach(function (f) { typed[f.id] = f.value; });
          const known = new Set(Array.from(live.querySelectorAll(".offer[id]")).map(function (o) { return o.id; }));
          live.innerHTML = fresh.innerHTML;
          open.forEach(function (id) { const d = document.getElementById(id); if (d) d.open = true; });
          Object.keys(typed).forEach(function (id) { const f = document.getElementById(id); if (f && typed[id]) f.value = typed[id]; });
          live.querySelectorAll(".offer[id]").forEach(function (o) { if (!known.has(o.id)) o.classList.add("fresh"); });
          setTimeZones(live);
          live.querySelectorAll(".bubbles").forEach(function (b) { b.scrollTop = b.scrollHeight; });
        });
    }
  }

  // My needs: a notification about a need on the list (an offer came or went, it expired...)
  // re-reads the page and swaps the cards that changed, so applying one twice changes nothing.
  const mine = document.getElementById("my-needs");
  if (mine) {
    let timer = null;
    function refreshCards() {
      fetch(location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error("my needs " + r.status); return r.text(); })
        .then(function (html) {
          const doc = new DOMParser().parseFromString(html, "text/html");
          mine.querySelectorAll("li.card[id]").forEach(function (card) {
            const fresh = doc.getElementById(card.id);
            if (!fresh || fresh.innerHTML === card.innerHTML) return;
            card.innerHTML = fresh.innerHTML;
            card.classList.add("fresh");
          });
        })
        .catch(function () {});
    }
    function soon() { clearTimeout(timer); timer = setTimeout(refreshCards, 200); }
    document.addEventListener("mkt:notification", function (event) {
      const d = event.detail.data || {};
      const id = d.need_id || (d.need && d.need.id);
      if (id && mine.querySelector("#need-" + id)) soon();
    });
    document.addEventListener("mkt:reconnected", soon);
  }

  // Star ratings: the radios run 1 to 5 in reading order; Right/Up raise, Left/Down lower,
  // stopping at either end instead of wrapping round as radio groups do.
  document.addEventListener("keydown", function (event) {
    const star = event.target;
    const group = star instanceof HTMLInputElement && star.type === "radio" && star.closest(".star-input");
    const step = { ArrowRight: 1, ArrowUp: 1, ArrowLeft: -1, ArrowDown: -1 }[event.key];
    if (!group || !step || event.altKey || event.ctrlKey || event.metaKey) return;
    event.preventDefault();
    const stars = Array.from(group.querySelectorAll('input[type="radio"]'));
    const next = stars[Math.min(stars.length - 1, Math.max(0, stars.indexOf(star) + step))];
    if (!next.checked) {
      next.checked = true;
      next.dispatchEvent(new Event("change", { bubbles: true }));
    }
    next.focus();
  });
  document.querySelectorAll(".bubbles").forEach(function (b) { b.scrollTop = b.scrollHeight; });
})();
