/* Nearby: one live connection per page, a bell, toasts, and a hook pages listen to.
   Pages react to `document` events named "mkt:notification" (detail = the notification). */
(function () {
  "use strict";
  const body = document.body;
  const seen = new Set();

  function toast(text, href) {
    const box = document.getElementById("toasts");
    if (!box) return;
    const item = document.createElement(href ? "a" : "div");
    item.className = "toast";
    item.textContent = text;
    if (href) item.href = href;
    box.appendChild(item);
    setTimeout(() => item.remove(), 6000);
  }

  function bump(delta) {
    const badge = document.getElementById("bell-count");
    const bell = document.getElementById("bell");
    if (!badge || !bell) return;
    const count = Math.max(0, (parseInt(badge.textContent, 10) || 0) + delta);
    badge.textContent = String(count);
    badge.hidden = count === 0;
    bell.setAttribute("aria-label", "Notifications, " + count + " unread");
  }

  // Times are typed as wall-clock time; the server reads them in this IANA zone at the date
  // chosen (an offset taken today would be an hour off across a DST change). Pages call it
  // again for parts they swap in.
  function setTimeZones(root) {
    let zone = "";
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { /* UTC */ }
    root.querySelectorAll("[data-tz]").forEach(function (input) { input.value = zone; });
  }
  setTimeZones(document);

  window.Nearby = { toast: toast, setTimeZones: setTimeZones };

  if (!body.dataset.user || typeof io === "undefined") return;
  const status = document.getElementById("live-status");
  function showStatus(text) {
    if (status && status.textContent !== text) status.textContent = text;
  }

  // Resume after the newest notification id the page was rendered with, then after the last
  // one received: the auth callback runs on every (re)connection (docs/events.md). While a
  // replay is under way only its own markers move the resume point, so a drop halfway
  // resumes at a page boundary and nothing in between is skipped.
  let lastId = parseInt(body.dataset.lastNotification, 10) || 0;
  let catchingUp = true;
  let caughtUpBefore = false;
  let missed = [];
  // Socket.IO's default transports: long-polling first, then the upgrade to WebSocket, so a
  // network or proxy that refuses WebSocket (in whatever way) still gets every live event.
  const socket = io({
    auth: function (send) { catchingUp = true; send({ last_id: lastId }); },
  });
  socket.on("notification", function (event) {
    if (!catchingUp && event.id > lastId) lastId = event.id;
    if (seen.has(event.id)) return;
    seen.add(event.id);
    bump(1);
    const detail = Object.assign({}, event);
    const handled = !document.dispatchEvent(
      new CustomEvent("mkt:notification", { detail: detail, cancelable: true })
    );
    // The server words every notification (`text`), the same as the notifications page.
    if (!event.text || handled) return;
    if (catchingUp) missed.push(event.text);
    else toast(event.text);
  });
  socket.on("replay.more", function (data) {
    lastId = Math.max(lastId, data.last_id);
    socket.emit("replay", { after: lastId });
  });
  socket.on("replay.done", function (data) {
    lastId = Math.max(lastId, data.last_id);
    catchingUp = false;
    // What a catch-up brought is one toast, not one per notification.
    const bell = document.getElementById("bell");
    if (missed.length === 1) toast(missed[0]);
    else if (missed.length) toast(missed.length + " new notifications", bell && bell.href);
    missed = [];
    // Live-only hints sent while the page was away are not replayed: pages re-read instead.
    if (caughtUpBefore) document.dispatchEvent(new CustomEvent("mkt:reconnected"));
    caughtUpBefore = true;
  });
  // Live-only hint (not a notification): a need posted to this provider stopped taking offers.
  socket.on("need.closed", function (data) {
    document.dispatchEvent(new CustomEvent("mkt:need-closed", { detail: data }));
  });
  // While down, say so; when the server refused us (signed out, say), say that instead.
  function showDown() {
    showStatus(socket.active ? "Reconnecting…"
      : "Live updates stopped. Reload the page to see what is new.");
  }
  socket.on("connect", function () { showStatus(""); });
  socket.on("disconnect", function (reason) {
    if (reason !== "io client disconnect") showDown();
  });
  socket.on("connect_error", showDown);
  // Back online: try at once rather than at the next back-off step.
  window.addEventListener("online", function () {
    if (socket.connected) return;
    socket.disconnect();
    socket.connect();
  });
  window.Nearby.socket = socket;
})();
