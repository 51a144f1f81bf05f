// The feed page: reactions without reloading, and new events as they arrive.
(function () {
  "use strict";
  var feed = document.getElementById("feed");
  if (!feed) return;
  var csrf = document.querySelector('meta[name="csrf-token"]').content;

  feed.addEventListener("click", function (event) {
    var button = event.target.closest("button.reaction");
    if (!button || button.disabled) return;
    var box = button.closest(".reactions");
    var body = new URLSearchParams({ kind: button.dataset.kind });
    button.disabled = true;
    fetch(box.dataset.url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf, Accept: "application/json" },
    })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (result) {
        box.querySelectorAll("button.reaction").forEach(function (b) {
          b.querySelector(".count").textContent = result.counts[b.dataset.kind];
        });
        button.classList.toggle("active", result.active);
        button.setAttribute("aria-pressed", String(result.active));
      })
      .catch(function () {
        button.classList.add("failed");
      })
      .finally(function () {
        button.disabled = false;
      });
  });

  // "Older": append the next page instead of leaving this one.
  var older = document.querySelector("a.older");
  if (older) {
    older.addEventListener("click", function (event) {
      event.preventDefault();
      if (older.dataset.loading) return;
      older.dataset.loading = "1";
      fetch(older.href + "&fragment=1", {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (result) {
          var template = document.createElement("template");
          template.innerHTML = result.html.trim();
          template.content.querySelectorAll("li").forEach(function (li) {
            if (document.getElementById(li.id)) li.remove();
          });
          feed.append(template.content);
          refreshTimes();
          if (result.older_url) older.href = result.older_url;
          else older.remove();
        })
        .catch(function () {
          window.location = older.href;
        })
        .finally(function () {
          delete older.dataset.loading;
        });
    });
  }

  // Relative times ("3 minutes ago") kept current, and alike for cards
  // rendered at different moments.
  function ago(date) {
    var s = Math.max(0, Math.round((Date.now() - date.getTime()) / 1000));
    var units = [["day", 86400], ["hour", 3600], ["minute", 60]];
    for (var i = 0; i < units.length; i++) {
      var n = Math.floor(s / units[i][1]);
      if (n >= 1) return n + " " + units[i][0] + (n > 1 ? "s" : "") + " ago";
    }
    return s < 10 ? "just now" : s + " seconds ago";
  }
  function refreshTimes() {
    feed.querySelectorAll("time[datetime]").forEach(function (el) {
      var date = new Date(el.getAttribute("datetime"));
      if (!isNaN(date) && Date.now() - date < 30 * 86400 * 1000) {
        el.textContent = ago(date);
      }
    });
  }
  refreshTimes();
  window.setInterval(refreshTimes, 30000);

  if (feed.dataset.live !== "true") return;
  var notice = document.getElementById("new-events");
  var url = feed.dataset.arrivedUrl;
  var POLL_MS = 3000;
  var shown = 0;

  function poll() {
    if (document.hidden) return schedule();
    var sep = url.indexOf("?") === -1 ? "?" : "&";
    fetch(url + sep + "since=" + encodeURIComponent(feed.dataset.since), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (result) {
        feed.dataset.since = result.since;
        if (!result.count) return;
        var empty = document.getElementById("feed-empty");
        if (empty) empty.remove();
        var template = document.createElement("template");
        template.innerHTML = result.html.trim();
        var fresh = 0;
        template.content.querySelectorAll("li").forEach(function (li) {
          // Recent arrivals come again (see feed_arrived_since); keep one.
          if (document.getElementById(li.id)) return li.remove();
          li.classList.add("fresh");
          fresh += 1;
        });
        if (!fresh) return;
        feed.prepend(template.content);
        refreshTimes();
        shown += fresh;
        notice.textContent = shown === 1 ? "1 new event" : shown + " new events";
        notice.hidden = false;
      })
      .catch(function () {})
      .finally(schedule);
  }

  function schedule() {
    window.setTimeout(poll, POLL_MS);
  }
  schedule();
})();
