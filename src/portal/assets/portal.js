// laddkoll portal: live session values without a reload. Polls the page's own JSON endpoint
// once a second and writes the formatted values into the elements marked data-field; when the
// session changes state (pending → active, active → finished) the page reloads to show it.
(function () {
  "use strict";
  var live = document.querySelector("[data-live]");
  if (!live || !window.fetch) {
    return;
  }
  var url = live.getAttribute("data-live");
  var status = live.getAttribute("data-status");
  if (status !== "pending" && status !== "active") {
    return;
  }
  var busy = false;
  function tick() {
    if (busy) {
      return;
    }
    busy = true;
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (res) {
        return res.ok ? res.json() : null;
      })
      .then(function (data) {
        busy = false;
        if (!data) {
          return;
        }
        if (data.status !== status) {
          window.location.reload();
          return;
        }
        Object.keys(data.fields).forEach(function (name) {
          var el = live.querySelector('[data-field="' + name + '"]');
          if (el && el.textContent !== data.fields[name]) {
            el.textContent = data.fields[name];
          }
        });
      })
      .catch(function () {
        busy = false;
      });
  }
  window.setInterval(tick, 1000);
})();
