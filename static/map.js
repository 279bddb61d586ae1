/* Maps (Leaflet, from npm): every element with data-map becomes a map of the shapes it lists —
   circles for grid cells and service areas, a pin for an exact point (templates/_map.html,
   marketplace/web/maps.py decide what a reader may see). The shapes are vectors: they are drawn
   whether or not the tiles load. A map with "pick" sets a form's coordinates by a tap or by
   dragging the pin; the form works the same without it. Maps inserted later (a region swapped
   in by a live refresh) are set up when they appear. */
(function () {
  "use strict";

  if (!window.L) return;  // Leaflet did not load: the page says everything in words

  const STYLES = {
    cell: { color: "#1d4ed8", weight: 2, fillOpacity: 0.2 },
    area: { color: "#0f766e", weight: 2, fillOpacity: 0.08, dashArray: "6 4" },
  };
  const WORLD = [[20, 0], 2];
  let pin = null;  // the marker icon (draw)

  function shapeLayer(shape) {
    if (shape.kind === "pin") {
      return L.marker([shape.lat, shape.lon], { icon: pin, interactive: false, keyboard: false, alt: shape.label || "" });
    }
    const circle = L.circle([shape.lat, shape.lon], Object.assign(
      { radius: shape.radius_m, className: "map-" + (shape.style || "cell") }, STYLES[shape.style] || STYLES.cell));
    if (shape.href) circle.on("click", function () { location.href = shape.href; });
    return circle;
  }

  // Leaflet's stylesheet, once per page, fetched when the first map is drawn (not a
  // render-blocking <link>: the map's room is already kept by app.css); maps wait for it
  function withStyles(el, then) {
    let link = document.querySelector("link[data-leaflet-css]");
    if (!link) {
      link = document.createElement("link");
      link.rel = "stylesheet";
      link.href = el.dataset.css;
      link.dataset.leafletCss = "";
      link.addEventListener("load", function () { link.dataset.loaded = "1"; });
      link.addEventListener("error", function () { link.dataset.loaded = "1"; });
      document.head.appendChild(link);
    }
    if (link.dataset.loaded) { then(); return; }
    const done = function () { then(); };
    link.addEventListener("load", done, { once: true });
    link.addEventListener("error", done, { once: true });
  }

  function setUp(el) {
    if (el.dataset.ready) return;
    el.dataset.ready = "1";
    withStyles(el, function () { draw(el); });
  }

  function draw(el) {
    const spec = JSON.parse(el.dataset.map);
    pin = pin || L.icon({  // Leaflet's pin, without its shadow (which has no sharp 2x image)
      iconUrl: el.dataset.images + "marker-icon.png", iconRetinaUrl: el.dataset.images + "marker-icon-2x.png",
      iconSize: [25, 41], iconAnchor: [12, 41],
    });
    const map = L.map(el, { scrollWheelZoom: false, zoomSnap: 0.5, maxZoom: Number(el.dataset.maxZoom) || 19 });
    L.tileLayer(el.dataset.tiles, {
      maxZoom: Number(el.dataset.maxZoom) || 19, attribution: el.dataset.attribution,
      detectRetina: true,  // sharp on phones: tiles of the next zoom at half size
    }).addTo(map);
    if (spec.shapes.length) {  // bounds from the data: a circle has none until it is on a map
      const bounds = L.latLngBounds([]);
      spec.shapes.forEach(function (shape) {
        const at = L.latLng(shape.lat, shape.lon);
        bounds.extend(shape.kind === "pin" ? at : at.toBounds(2 * shape.radius_m));
      });
      map.fitBounds(bounds, { maxZoom: 14, padding: [24, 24] });  // a circle clear of the edges and the attribution
    } else {
      map.setView(WORLD[0], WORLD[1]);
    }
    spec.shapes.forEach(function (shape) { shapeLayer(shape).addTo(map); });
    if (spec.pick) pickOn(map, spec.pick);
    el.nearbyMap = map;
  }

  /* The post-need form: a tap or a drag of the pin fills the coordinates (and clears the place
     box, which would otherwise win); coordinates filled any other way move the pin. */
  function pickOn(map, pick) {
    const lat = document.getElementById(pick.lat);
    const lon = document.getElementById(pick.lon);
    const place = document.getElementById(pick.place);
    const status = document.getElementById(pick.status);
    const radius = pick.radius && document.getElementById(pick.radius);
    let marker = null;
    let reach = null;  // how far a provider may come, as typed (data-metres: one unit in metres)

    function reachMetres() {
      const typed = radius ? parseFloat(radius.value) : NaN;
      return isFinite(typed) && typed > 0 ? typed * Number(radius.dataset.metres || 1000) : 0;
    }
    function drawReach() {
      const metres = reachMetres();
      if (!marker || !metres) { if (reach) { reach.remove(); reach = null; } return; }
      if (!reach) {
        reach = L.circle(marker.getLatLng(), Object.assign({ radius: metres, className: "map-area", interactive: false }, STYLES.area)).addTo(map);
      } else {
        reach.setLatLng(marker.getLatLng()).setRadius(metres);
      }
    }
    function put(latlng) {
      if (!marker) {
        marker = L.marker(latlng, { icon: pin, draggable: true, keyboard: false, alt: "The place you picked" }).addTo(map);
        marker.on("dragend", function () { chosen(marker.getLatLng()); });
        marker.on("drag", drawReach);
      } else {
        marker.setLatLng(latlng);
      }
      drawReach();
    }
    if (radius) radius.addEventListener("input", drawReach);
    function chosen(latlng) {
      const wrapped = latlng.wrap();
      put(wrapped);
      lat.value = wrapped.lat.toFixed(5);
      lon.value = wrapped.lng.toFixed(5);
      if (place) place.value = "";
      if (status) status.textContent = "Using the point you picked on the map. Drag the pin to move it.";
      lat.dispatchEvent(new Event("input", { bubbles: true }));
    }
    function fromInputs() {
      const y = parseFloat(lat.value), x = parseFloat(lon.value);
      if (!isFinite(y) || !isFinite(x) || Math.abs(y) > 90 || Math.abs(x) > 180) return;
      put([y, x]);
      map.setView([y, x], Math.max(map.getZoom(), 13));
    }
    map.on("click", function (event) { chosen(event.latlng); });
    [lat, lon].forEach(function (input) { input.addEventListener("change", fromInputs); });
    let looked = "";
    document.addEventListener("mkt:place-found", function (event) {  // a town or ZIP code typed
      const key = event.detail.lat + "," + event.detail.lon;
      if (key === looked || lat.value) return;  // once per place; a picked point stays in view
      looked = key;
      map.setView([event.detail.lat, event.detail.lon], 12);
    });
    fromInputs();
  }

  function all(root) { root.querySelectorAll(".map[data-map]").forEach(setUp); }
  all(document);
  // swap.js draws the maps of what it swapped in before it puts the reader back in place
  window.Nearby = window.Nearby || {};
  window.Nearby.drawMaps = all;
  new MutationObserver(function (changes) {
    changes.forEach(function (change) {
      change.addedNodes.forEach(function (node) {
        if (node.nodeType !== 1) return;
        if (node.matches(".map[data-map]")) setUp(node); else all(node);
      });
    });
  }).observe(document.body, { childList: true, subtree: true });
})();
