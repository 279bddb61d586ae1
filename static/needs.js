/* Customer pages: location helpers and the reach preview on the need form; live refresh of the
   need page and of offer counts on "My needs". */
(function () {
  "use strict";

  // Times are typed as wall-clock time; the server reads them in this IANA zone at the date
  // chosen (an offset taken today would be an hour off across a DST change).
  function setTimeZones(root) {
    let zone = "";
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { /* UTC */ }
    root.querySelectorAll("[data-tz]").forEach(function (input) { input.value = zone; });
  }
  setTimeZones(document);

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
        const params = new URLSearchParams({
          category: form.category.value, radius_km: form.radius_km.value,
          lat: lat.value, lon: lon.value, place_query: place.value,
        });
        if (!form.category.value || (!(lat.value && lon.value) && !place.value)) return;
        fetch("/needs/reach?" + params.toString(), { headers: { Accept: "application/json" } })
          .then(function (r) { return r.json(); })
          .then(function (body) {
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
    document.addEventListener("mkt:notification", function (event) {
      if (!concerns(event, needId)) return;
      event.preventDefault();  // the page itself shows the change; no toast needed
      refresh();
    });
    function refresh() {
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

  const counts = document.querySelectorAll("[data-offer-count]");
  if (counts.length) {
    document.addEventListener("mkt:notification", function (event) {
      const type = event.detail.type;
      const delta = type === "offer.received" ? 1 : type === "offer.withdrawn" ? -1 : 0;
      if (!delta) return;
      const el = document.querySelector('[data-offer-count="' + event.detail.data.need_id + '"]');
      if (el) {
        el.textContent = String(Math.max(0, (parseInt(el.textContent, 10) || 0) + delta));
        el.closest(".card").classList.add("fresh");
      }
    });
  }
  document.querySelectorAll(".bubbles").forEach(function (b) { b.scrollTop = b.scrollHeight; });
})();
