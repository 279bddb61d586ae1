/* Provider pages: "Use my location" on the set-up form, and the live feed — needs matched to
   this provider appear at the top, highlighted, with an unread count in the heading. */
(function () {
  "use strict";

  const setTimeZones = window.Nearby.setTimeZones;  // app.js, loaded first

  /* --- set-up: browser geolocation fills the coordinates ---------------------------------- */
  const locate = document.getElementById("use-location");
  if (locate) {
    const lat = document.getElementById("f-lat");
    const lon = document.getElementById("f-lon");
    const place = document.getElementById("f-place_query");
    const status = document.getElementById("location-status");
    const coords = document.getElementById("coords");
    const reasons = {
      1: "Location permission was denied. Type a place name or enter coordinates instead (you can allow location in your browser's site settings).",
      2: "Your location is not available right now. Type a place name or enter coordinates instead.",
      3: "Finding your location took too long. Try again, or type a place name instead.",
    };
    locate.addEventListener("click", function () {
      if (!navigator.geolocation || !window.isSecureContext) {
        status.textContent = "This browser cannot share your location here. Type a place name or enter coordinates instead.";
        return;
      }
      status.textContent = "Finding you…";
      locate.disabled = true;
      navigator.geolocation.getCurrentPosition(function (pos) {
        locate.disabled = false;
        lat.value = pos.coords.latitude.toFixed(5);
        lon.value = pos.coords.longitude.toFixed(5);
        place.value = "";
        if (coords) coords.open = true;
        status.textContent = "Using your current location (" + lat.value + ", " + lon.value + ").";
      }, function (error) {
        locate.disabled = false;
        status.textContent = reasons[error.code] || reasons[2];
      }, { enableHighAccuracy: false, timeout: 10000, maximumAge: 60000 });
    });
  }

  /* --- the live feed ----------------------------------------------------------------------- */
  const list = document.querySelector("[data-live-feed]");
  if (!list) return;
  const empty = document.getElementById("feed-empty");
  const badge = document.getElementById("feed-unread");
  const announce = document.getElementById("feed-status");
  const unseen = new Set();
  const pending = new Set();
  let timer = null;

  function showCount() {
    const n = unseen.size;
    badge.textContent = n + " new";
    badge.setAttribute("aria-label", n + " new " + (n === 1 ? "need" : "needs") + ": show");
    badge.hidden = n === 0;
  }

  function clearUnread() {
    if (!unseen.size) return;
    unseen.clear();
    showCount();
  }

  function markFresh(card) {
    card.classList.add("fresh", "is-new");
    const flag = card.querySelector(".new-flag");
    if (flag) flag.hidden = false;
    unseen.add(card.id);
  }

  // The feed is paged nearest band first, so a new need far out is not on the first page:
  // ask for exactly the announced needs (the server renders those still in this feed).
  function announcedUrl(ids) {
    return list.dataset.announcedUrl + "?" + ids.map(function (id) {
      return "need=" + encodeURIComponent(id);
    }).join("&");
  }

  function insert(ids) {
    fetch(announcedUrl(ids), { headers: { Accept: "text/html" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("feed " + response.status);
        return response.text();
      })
      .then(function (html) {
        const doc = new DOMParser().parseFromString(html, "text/html");
        const added = [];
        // Newest last in `ids`, so inserting each at the top leaves the newest first.
        ids.forEach(function (id) {
          const fresh = doc.getElementById("need-" + id);
          if (!fresh || document.getElementById("need-" + id)) return;
          const card = document.importNode(fresh, true);
          setTimeZones(card);
          list.insertBefore(card, list.firstElementChild);
          markFresh(card);
          added.push(card);
        });
        if (!added.length) return;
        if (empty) empty.hidden = true;
        showCount();
        const titles = added.map(function (card) {
          const h = card.querySelector("h2");
          return h ? h.textContent.trim() : "";
        });
        announce.textContent = (added.length === 1 ? "New need: " : added.length + " new needs: ") + titles.join("; ");
      })
      .catch(function () {
        if (window.Nearby) window.Nearby.toast("New needs arrived — reload the page to see them.");
      });
  }

  document.addEventListener("mkt:notification", function (event) {
    const detail = event.detail || {};
    if (detail.type !== "need.matched" || !detail.data || !detail.data.need) return;
    event.preventDefault(); // this page shows the need itself; no toast
    pending.add(String(detail.data.need.id));
    clearTimeout(timer);
    timer = setTimeout(function () { // a replay after reconnecting may bring many at once
      const ids = Array.from(pending).sort(function (a, b) { return a - b; });
      pending.clear();
      insert(ids);
    }, 200);
  });

  // A need in the feed stopped taking offers (accepted, cancelled or expired): say so on its
  // card at once instead of letting the provider answer it in vain.
  const closedNotes = {
    assigned: "Assigned: this need no longer takes offers.",
    cancelled: "Cancelled by the customer.",
    expired: "Expired: this need no longer takes offers.",
  };
  document.addEventListener("mkt:need-closed", function (event) {
    const detail = event.detail || {};
    const card = document.getElementById("need-" + detail.need_id);
    if (!card || card.classList.contains("closed")) return;
    card.classList.add("closed");
    card.classList.remove("is-new", "fresh");
    const flag = card.querySelector(".new-flag");
    if (flag) flag.hidden = true;
    if (unseen.delete(card.id)) showCount();
    const note = document.createElement("p");
    note.className = "closed-note";
    note.setAttribute("role", "status");
    note.textContent = closedNotes[detail.status] || "This need no longer takes offers.";
    card.querySelector(".feed-offer").replaceChildren(note);
  });

  function seenFrom(event) {
    const card = event.target.closest && event.target.closest(".feed-card.is-new");
    if (card) clearUnread();
  }
  list.addEventListener("focusin", seenFrom);
  list.addEventListener("click", seenFrom);
  window.addEventListener("scroll", function () {
    if (unseen.size && window.scrollY < 40) clearUnread();
  }, { passive: true });
  badge.addEventListener("click", function () {
    const first = list.querySelector(".feed-card.is-new");
    window.scrollTo({ top: 0, behavior: "smooth" });
    if (first) first.focus({ preventScroll: true });
    clearUnread();
  });
})();
