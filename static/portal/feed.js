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
  var POLL_MS = 3000;
  var shown = 0;
  // What "new" means: newer than every card the page opened with. An event
  // that happened earlier but arrived only now (a backlog, a slow service)
  // is placed where its time puts it, without being announced as new.
  var firstCard = feed.querySelector(":scope > li[data-time]");
  var newestAtLoad = firstCard ? cardKey(firstCard) : [-Infinity, 0];

  function cardKey(li) {
    return [Date.parse(li.dataset.time), Number(li.dataset.id)];
  }
  function newer(a, b) {
    return a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);
  }

  // Put an arrived card where (time, id) puts it in the newest-first list.
  // Returns false when it belongs to an older page than the ones shown.
  function place(li) {
    var key = cardKey(li);
    var cards = feed.querySelectorAll(":scope > li[data-time]");
    for (var i = 0; i < cards.length; i++) {
      if (newer(key, cardKey(cards[i]))) {
        feed.insertBefore(li, cards[i]);
        return true;
      }
    }
    if (document.querySelector("a.older")) return false;
    feed.append(li);
    return true;
  }

  // Cards that reached the feed, as HTML: each placed by its time, once.
  function receive(html) {
    var template = document.createElement("template");
    template.innerHTML = html.trim();
    var fresh = 0;
    template.content.querySelectorAll(":scope > li").forEach(function (li) {
      // Recent arrivals come again (see feed_arrived_since); keep one.
      if (document.getElementById(li.id)) return;
      if (!place(li)) return;
      li.classList.add("fresh");
      if (newer(cardKey(li), newestAtLoad)) fresh += 1;
    });
    var empty = document.getElementById("feed-empty");
    if (empty && feed.querySelector(":scope > li")) empty.remove();
    refreshTimes();
    if (!fresh) return;
    shown += fresh;
    notice.textContent = shown === 1 ? "1 new event" : shown + " new events";
    notice.hidden = false;
  }

  var url = feed.dataset.arrivedUrl;
  function poll() {
    if (document.hidden) return schedule(POLL_MS);
    var sep = url.indexOf("?") === -1 ? "?" : "&";
    var again = POLL_MS;
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
        // A burst bigger than one answer: read the rest at once.
        if (result.more) again = 0;
        if (result.count) receive(result.html);
      })
      .catch(function () {})
      .finally(function () {
        schedule(again);
      });
  }

  function schedule(ms) {
    window.setTimeout(poll, ms);
  }
  schedule(POLL_MS);
})();
