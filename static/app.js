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

  const labels = {
    "need.matched": (d) => "New need nearby: " + d.need.title,
    "offer.received": (d) => "New offer from " + d.offer.provider.display_name,
    "offer.revised": (d) => d.offer.provider.display_name + " revised their offer",
    "offer.withdrawn": (d) => d.offer.provider.display_name + " withdrew their offer",
    "offer.accepted": (d) => "Your offer was accepted: " + d.need.title,
    "offer.declined": (d) => "Offer declined: " + d.need.title,
    "need.cancelled": (d) => "Cancelled: " + d.need.title,
    "need.expired": (d) => "Expired: " + d.need.title,
    "need.completed": (d) => "Job completed: " + d.need.title,
    "message.received": (d) => "Message from " + d.sender_name + ": " + d.body,
    "rating.received": (d) => "You were rated " + d.stars + "★ for " + d.title,
    "rating.replied": (d) => d.provider + " replied to your rating",
  };

  window.Nearby = { toast: toast };

  if (!body.dataset.user || typeof io === "undefined") return;
  const socket = io({ transports: ["websocket"] });
  socket.on("notification", function (event) {
    if (seen.has(event.id)) return;
    seen.add(event.id);
    bump(1);
    const detail = Object.assign({}, event);
    const handled = !document.dispatchEvent(
      new CustomEvent("mkt:notification", { detail: detail, cancelable: true })
    );
    const label = labels[event.type];
    if (label && !handled) toast(label(event.data));
  });
  // Live-only hint (not a notification): a need posted to this provider stopped taking offers.
  socket.on("need.closed", function (data) {
    document.dispatchEvent(new CustomEvent("mkt:need-closed", { detail: data }));
  });
  window.Nearby.socket = socket;
})();
