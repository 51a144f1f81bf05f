// Every page: the menu on narrow screens, and team choices that follow the
// chosen department.
(function () {
  "use strict";

  // The top bar's links fold behind "Menu" on a phone (see portal.css).
  var bar = document.getElementById("topbar");
  var toggle = bar && bar.querySelector(".nav-toggle");
  if (toggle) {
    toggle.hidden = false;
    toggle.addEventListener("click", function () {
      var open = bar.classList.toggle("nav-open");
      toggle.setAttribute("aria-expanded", String(open));
    });
  }

  // A team select whose options carry data-department shows only the teams
  // of the department chosen in the same form ("No team"/"All" stay).
  document.querySelectorAll("form").forEach(function (form) {
    var department = form.querySelector("select[name=department]");
    var team = form.querySelector("select[name=team]");
    if (!department || !team) return;
    if (!team.querySelector("option[data-department]")) return;
    function follow() {
      var chosen = department.value;
      team.querySelectorAll("option[data-department]").forEach(function (o) {
        var fits = !chosen || o.dataset.department === chosen;
        o.hidden = !fits;
        o.disabled = !fits;
        if (!fits && o.selected) team.value = "";
      });
    }
    department.addEventListener("change", follow);
    follow();
  });
})();
