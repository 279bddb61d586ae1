// The need form: while the customer types the title or details, offer ?intent and #topic tags
// (and a category) people nearby use (/needs/suggestions: aggregates only). A click writes the
// tag where they are typing (completing a half-typed one) or picks the category.
(function () {
  "use strict";
  var box = document.getElementById("tag-suggestions");
  var form = document.getElementById("need-form");
  if (!box || !form) return;
  var title = document.getElementById("f-title");
  var details = document.getElementById("f-description");
  var lat = document.getElementById("f-lat");
  var lon = document.getElementById("f-lon");
  var place = document.getElementById("f-place_query");
  var last = details;
  var timer = null;

  function clear() {
    while (box.children.length > 1) box.removeChild(box.lastChild);
  }

  function button(label, onClick) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "tag suggestion";
    b.textContent = label;
    b.addEventListener("click", onClick);
    box.appendChild(b);
  }

  function write(field, spelled, typing) {
    var value = field.value;
    if (typing && value.slice(-typing.length).toLowerCase() === typing.toLowerCase()) {
      value = value.slice(0, value.length - typing.length);
    } else if (value && !/\s$/.test(value)) {
      value += " ";
    }
    field.value = value + spelled + " ";
    field.focus();
    ask();
  }

  function ask() {
    clearTimeout(timer);
    timer = setTimeout(function () {
      if (!(lat && lon && lat.value && lon.value) && !(place && place.value)) return;
      var params = new URLSearchParams({
        text: last.value, also: (last === title ? details : title).value, lat: lat ? lat.value : "", lon: lon ? lon.value : "",
        place_query: place ? place.value : "",
      });
      fetch("/needs/suggestions?" + params.toString(), { headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) {
          clear();
          if (!body) { box.hidden = true; return; }
          var field = last;
          body.tags.forEach(function (t) {
            button(t.spelled, function () { write(field, t.spelled, body.typing); });
          });
          if (body.category && form.category && form.category.value !== body.category.slug) {
            button("Category: " + body.category.name, function () {
              form.category.value = body.category.slug;
              form.category.dispatchEvent(new Event("change", { bubbles: true }));
              ask();
            });
          }
          box.hidden = box.children.length <= 1;
        })
        .catch(function () { box.hidden = true; });
    }, 400);
  }

  [title, details].forEach(function (field) {
    if (!field) return;
    field.addEventListener("input", function () { last = field; ask(); });
    field.addEventListener("focus", function () { last = field; });
  });
  [lat, lon, place].forEach(function (field) { if (field) field.addEventListener("change", ask); });
})();
