// laddkoll portal. (1) An expired sign-in is renewed through the API's cookie-mode refresh (the
// CSRF token is the readable laddkoll_csrf cookie, by design); nothing is kept in localStorage.
(function () {
  "use strict";
  var main = document.querySelector("[data-refresh]");
  if (!main || !window.fetch) {
    return;
  }
  var next = main.getAttribute("data-next");
  var login = main.getAttribute("data-login");
  var csrf = (document.cookie.match(/(?:^|; )laddkoll_csrf=([^;]*)/) || [])[1] || "";
  // One attempt per minute: a renewed sign-in that still does not work goes to the login page.
  var last = Number(window.sessionStorage.getItem("laddkoll-refresh") || 0);
  if (!csrf || Date.now() - last < 60000) {
    window.location.replace(login);
    return;
  }
  window.sessionStorage.setItem("laddkoll-refresh", String(Date.now()));
  fetch(main.getAttribute("data-refresh"), {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-CSRF-Token": decodeURIComponent(csrf) }
  })
    .then(function (res) {
      window.location.replace(res.ok ? next : login);
    })
    .catch(function () {
      window.location.replace(login);
    });
})();

// (2) "Use my location" on the search form fills in the browser's position.
(function () {
  "use strict";
  var button = document.querySelector("[data-geolocate]");
  if (!button || !navigator.geolocation) {
    return;
  }
  button.hidden = false;
  button.addEventListener("click", function () {
    navigator.geolocation.getCurrentPosition(function (pos) {
      document.getElementById("lat").value = pos.coords.latitude.toFixed(5);
      document.getElementById("lon").value = pos.coords.longitude.toFixed(5);
      button.form.submit();
    }, function () {
      button.disabled = true;
    });
  });
})();

// (3) Live session values without a reload. Polls the page's own JSON endpoint
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
