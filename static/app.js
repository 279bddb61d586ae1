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

  // The delivery protocol (docs/events.md, "Delivery without loss"): every notification of
  // this user carries `seq`, 1, 2, 3, ... with no holes. The page keeps the last seq it holds
  // without a gap (starting from the newest one it was rendered with) and resumes after it on
  // every (re)connection: the auth callback runs each time. An event beyond the next seq is a
  // gap: the page waits a moment for the missing ones (two server processes may deliver out
  // of order), then asks for a replay from the last contiguous seq; so does a `resync` from
  // the server. Ids de-duplicate (delivery is at-least-once).
  let lastSeq = parseInt(body.dataset.lastSeq, 10) || 0;
  const ahead = new Set(); // seqs received beyond lastSeq + 1
  let catchingUp = true; // until the replay that (re)connecting started is done
  let replaying = false; // a replay asked for while live is under way
  let replayAgain = false; // a gap or resync came during it: ask again when it is done
  let resynced = false; // a resync's replay is under way: pages re-read when it is done
  let gapTimer = null;
  let retryTimer = null;
  let caughtUpBefore = false;
  let missed = [];
  const GAP_GRACE_MS = 1000;
  // Socket.IO's default transports: long-polling first, then the upgrade to WebSocket, so a
  // network or proxy that refuses WebSocket (in whatever way) still gets every live event.
  const socket = io({
    auth: function (send) {
      catchingUp = true;
      replaying = false;
      replayAgain = false;
      resynced = false; // the reconnection's catch-up ends with mkt:reconnected anyway
      clearTimeout(gapTimer);
      gapTimer = null;
      send({ last_seq: lastSeq });
    },
  });
  function advance(seq) {
    if (seq <= lastSeq) return;
    ahead.add(seq);
    while (ahead.has(lastSeq + 1)) {
      ahead.delete(lastSeq + 1);
      lastSeq += 1;
    }
    body.dataset.lastSeq = String(lastSeq);
  }
  function askReplay() {
    clearTimeout(gapTimer);
    gapTimer = null;
    if (!socket.connected || catchingUp) return; // (re)connecting replays anyway
    if (replaying) { replayAgain = true; return; }
    replaying = true;
    socket.emit("replay", { after_seq: lastSeq }, function (answer) {
      // Only a refusal is answered: too many replays (wait, then ask again).
      if (!answer || !answer.error) return;
      replaying = false;
      clearTimeout(retryTimer);
      retryTimer = setTimeout(askReplay, 5000);
    });
  }
  function checkGap() {
    if (ahead.size === 0 || catchingUp || replaying) return;
    if (gapTimer === null) gapTimer = setTimeout(askReplay, GAP_GRACE_MS);
  }
  socket.on("notification", function (event) {
    if (typeof event.seq === "number") advance(event.seq);
    if (ahead.size === 0) { clearTimeout(gapTimer); gapTimer = null; }
    else checkGap();
    if (seen.has(event.id)) return;
    seen.add(event.id);
    if (event.id > (parseInt(body.dataset.lastNotification, 10) || 0)) {
      body.dataset.lastNotification = String(event.id);
    }
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
  socket.on("replay.more", function () {
    // The page's events came in order before this signal: the page holds them, so it goes
    // on from its own last contiguous seq (data.last_seq, or more).
    socket.emit("replay", { after_seq: lastSeq });
  });
  socket.on("replay.done", function () {
    if (replaying) {
      replaying = false;
      if (replayAgain) { replayAgain = false; askReplay(); return; }
      checkGap();
      // Live-only hints the server could not deliver are not replayed: pages re-read.
      if (resynced) {
        resynced = false;
        document.dispatchEvent(new CustomEvent("mkt:reconnected"));
      }
      return;
    }
    catchingUp = false;
    checkGap();
    // What a catch-up brought is one toast, not one per notification.
    const bell = document.getElementById("bell");
    if (missed.length === 1) toast(missed[0]);
    else if (missed.length) toast(missed.length + " new notifications", bell && bell.href);
    missed = [];
    // Live-only hints sent while the page was away are not replayed: pages re-read instead.
    if (caughtUpBefore) document.dispatchEvent(new CustomEvent("mkt:reconnected"));
    caughtUpBefore = true;
  });
  // The server could not deliver something live (its message queue was away): catch up.
  socket.on("resync", function () {
    if (catchingUp) return; // a replay from lastSeq is under way already
    resynced = true;
    if (replaying) replayAgain = true;
    else askReplay();
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
