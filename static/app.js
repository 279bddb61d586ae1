/* Nearby: one live connection per page, a bell, toasts, and a hook pages listen to.
   Pages react to `document` events named "mkt:notification" (detail = the notification).
   Also (the functions after the live part): times in the reader's zone and relative times
   kept current, confirmations in a <dialog>, and the focus of a form's error summary. */
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
    root.querySelectorAll("[data-tz]").forEach(function (input) { if (zone) input.value = zone; });
    root.querySelectorAll("[data-locale]").forEach(function (input) {
      if (input.tagName === "INPUT") input.value = navigator.language || "";
    });
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
    const detail = Object.assign({}, event);
    const handled = !document.dispatchEvent(
      new CustomEvent("mkt:notification", { detail: detail, cancelable: true })
    );
    if (!handled) bump(1);  // what the page shows itself is not "unread" somewhere else
    // The server words every notification (`text`), the same as the notifications page.
    if (!event.text || handled) return;
    if (catchingUp) missed.push(event.text);
    else toast(event.text, window.Nearby.linkFor && window.Nearby.linkFor(event));
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

(function () {
  "use strict";
  const body = document.body;

  /* --- the reader's zone and locale, times, confirmations, error summaries ---------------- */

  function browserZone() {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { return ""; }
  }

  // Where a toast leads: the need it is about, else the notifications page.
  function linkFor(event) {
    const d = (event && event.data) || {};
    const id = d.need_id || (d.need && d.need.id);
    if (id) return "/needs/" + encodeURIComponent(id);
    const bell = document.getElementById("bell");
    return bell ? bell.href : undefined;
  }

  // The English of the reader's region ("en-DE"), as the server writes dates (web/i18n.py).
  function displayLocale() {
    const region = ((navigator.language || "").split("-")[1] || "").toUpperCase();
    try {
      return Intl.DateTimeFormat.supportedLocalesOf(["en-" + region]).length ? "en-" + region : "en-US";
    } catch (e) { return "en-US"; }
  }

  // Rendered for another zone (an account not yet told, or nobody signed in): write the
  // absolute times again in this browser's zone. The title keeps the full date.
  function localTimes(root) {
    const zone = browserZone();
    if (!zone || body.dataset.zone === zone) return;
    const options = { weekday: "short", month: "short", day: "numeric", hour: "numeric",
      minute: "2-digit", timeZone: zone };
    const thisYear = new Intl.DateTimeFormat("en", { year: "numeric", timeZone: zone }).format(new Date());
    const full = new Intl.DateTimeFormat(displayLocale(), { dateStyle: "full", timeStyle: "long", timeZone: zone });
    root.querySelectorAll("time[data-local][datetime]").forEach(function (el) {
      const at = new Date(el.getAttribute("datetime"));
      if (isNaN(at)) return;
      const year = new Intl.DateTimeFormat("en", { year: "numeric", timeZone: zone }).format(at);
      const day = new Intl.DateTimeFormat(displayLocale(),
        year === thisYear ? options : Object.assign({ year: "numeric" }, options));
      el.textContent = day.format(at).replace(/\u202f/g, " ");
      el.title = full.format(at);
    });
  }

  // Babel's units and threshold (web/filters.py relative_text), so both write the same words.
  const UNITS = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400],
    ["hour", 3600], ["minute", 60]];
  let relative = null;
  try { relative = new Intl.RelativeTimeFormat("en", { numeric: "always" }); } catch (e) { relative = null; }
  function relativeText(at, now) {
    const seconds = (at - now) / 1000;
    if (Math.abs(seconds) < 60) return seconds > 0 ? "in less than a minute" : "just now";
    for (let i = 0; i < UNITS.length; i++) {
      const count = Math.abs(seconds) / UNITS[i][1];
      if (count >= 0.85) {
        const n = Math.max(1, Math.round(count));
        return relative.format(seconds > 0 ? n : -n, UNITS[i][0]);
      }
    }
    return "";
  }
  function relativeTimes(root) {
    if (!relative) return;
    const now = Date.now();
    (root || document).querySelectorAll("time[data-relative][datetime]").forEach(function (el) {
      const at = Date.parse(el.getAttribute("datetime"));
      if (isNaN(at)) return;
      const text = relativeText(at, now);
      if (text && el.textContent !== text) el.textContent = text;
    });
  }

  // The account learns this browser's zone and language, so the next pages are rendered in
  // them (the server keeps them: web/accounts.py viewer).
  function reportViewer() {
    const token = document.querySelector('meta[name="csrf-token"]');
    const zone = browserZone();
    const language = (navigator.language || "").replace(/-/g, "_");
    if (!body.dataset.user || !token || !zone) return;
    if (body.dataset.zone === zone && (!language || body.dataset.locale === language)) return;
    const form = new URLSearchParams({ csrf_token: token.content, tz: zone, locale: navigator.language || "" });
    // Kept as a promise of the account's answer (what tests and later scripts can wait for).
    window.Nearby.viewer = fetch("/account/viewer", { method: "POST", body: form,
      credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .catch(function () { return null; });
  }

  // A form with data-confirm asks first, in a <dialog> saying what will happen; "yes" sends
  // it with confirm=yes. Without JavaScript the server asks on a page instead (web/confirm.py).
  function confirmDialog() {
    const dialog = document.createElement("dialog");
    dialog.className = "confirm";
    dialog.setAttribute("aria-labelledby", "confirm-dialog-text");
    dialog.innerHTML = '<form method="dialog"><p id="confirm-dialog-text"></p>' +
      '<div class="row"><button value="yes" class="yes"></button>' +
      '<button value="no" class="secondary" autofocus>Go back</button></div></form>';
    document.body.appendChild(dialog);
    return dialog;
  }
  let dialog = null;
  let opener = null;
  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
    const field = form.querySelector('input[name="confirm"]');
    if (form.dataset.confirmed) { delete form.dataset.confirmed; return; }
    if (field && field.value === "yes") return;
    if (typeof HTMLDialogElement === "undefined") return;  // the server's page asks instead
    event.preventDefault();
    dialog = dialog || confirmDialog();
    opener = event.submitter || document.activeElement;
    dialog.querySelector("#confirm-dialog-text").textContent = form.dataset.confirm;
    const yes = dialog.querySelector("button.yes");
    yes.textContent = form.dataset.confirmYes || "Yes";
    yes.classList.toggle("danger", form.querySelector("button.danger, button.ghost") !== null);
    dialog.returnValue = "";
    dialog.onclose = function () {
      if (dialog.returnValue === "yes") {
        if (field) field.value = "yes";
        // Through the submit event again (answered at once above), so a page script such
        // as swap.js can send it without a reload.
        form.dataset.confirmed = "yes";
        const button = opener && opener.form === form ? opener : undefined;
        if (form.requestSubmit) form.requestSubmit(button);
        else form.submit();
      } else if (opener && opener.focus) {
        opener.focus();
      }
    };
    dialog.showModal();
  }, true);

  // A refused form: its summary takes focus; a link in it moves focus to its input.
  function errorSummary() {
    const summary = document.querySelector("[data-error-summary]");
    if (!summary) return;
    summary.focus();
    summary.addEventListener("click", function (event) {
      const link = event.target.closest("a[href^='#']");
      const target = link && document.getElementById(link.getAttribute("href").slice(1));
      if (!target) return;
      event.preventDefault();
      const details = target.closest("details");
      if (details) details.open = true;
      target.focus();
      target.scrollIntoView({ block: "center" });
    });
  }

  // What the page showed itself (its script cancelled the event) is read: the bell did not
  // count it, and the server is told so a reload does not count it either.
  const shown = [];
  let shownTimer = null;
  function markShownRead() {
    const token = document.querySelector('meta[name="csrf-token"]');
    const ids = shown.splice(0);
    if (!token || !ids.length) return;
    const form = new URLSearchParams({ csrf_token: token.content });
    ids.forEach(function (id) { form.append("ids", id); });
    // The promise of the last such POST (tests wait for it).
    window.Nearby.readSent = fetch("/notifications/read", { method: "POST", body: form,
      credentials: "same-origin", redirect: "manual" }).then(function () { return ids; })
      .catch(function () { return []; });
  }
  document.addEventListener("mkt:notification", function (event) {
    const id = event.detail && event.detail.id;
    // Page scripts listen after this one: look once the event has been dispatched to all.
    queueMicrotask(function () {
      if (!event.defaultPrevented || !id) return;
      shown.push(id);
      clearTimeout(shownTimer);
      shownTimer = setTimeout(markShownRead, 150);  // one POST for a burst (a catch-up)
    });
  });

  window.Nearby.linkFor = linkFor;
  (function viewerSetup() {
    reportViewer();
    localTimes(document);
    relativeTimes(document);
    setInterval(function () { relativeTimes(document); }, 30000);
    // Parts other scripts swap in (the need page, feed cards) get the same treatment.
    new MutationObserver(function (records) {
      records.forEach(function (r) {
        r.addedNodes.forEach(function (n) {
          if (n.nodeType === 1) { localTimes(n); relativeTimes(n); }
        });
      });
    }).observe(document.getElementById("main") || document.body, { childList: true, subtree: true });
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", errorSummary);
    else errorSummary();
  })();
})();
