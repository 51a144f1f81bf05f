// The feed page: reactions without reloading, older pages below, and new
// events as they arrive (pushed over Server-Sent Events, or polled).
(function () {
  "use strict";
  var feed = document.getElementById("feed");
  if (!feed) return;
  var csrf = document.querySelector('meta[name="csrf-token"]').content;

  // An aggregated card shows the sum of its events' reactions.
  function refreshGroupTotals(group) {
    if (!group) return;
    ["like", "fire"].forEach(function (kind) {
      var total = 0;
      group
        .querySelectorAll("button.reaction[data-kind=" + kind + "] .count")
        .forEach(function (count) {
          total += Number(count.textContent) || 0;
        });
      var shown = group.querySelector("." + kind + "-total");
      if (shown) shown.textContent = total;
    });
  }

  function showCounts(box, counts) {
    box.querySelectorAll("button.reaction").forEach(function (b) {
      var count = counts[b.dataset.kind];
      if (count !== undefined) b.querySelector(".count").textContent = count;
    });
    refreshGroupTotals(box.closest("li.group"));
  }

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
        showCounts(box, result.counts);
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

  // "Older": append the next page instead of leaving this one; the address
  // follows, so a reload or a shared link comes back to the same place.
  var older = document.querySelector("a.older");
  var end = document.getElementById("end-of-feed");
  if (older) {
    older.addEventListener("click", function (event) {
      event.preventDefault();
      if (older.dataset.loading) return;
      older.dataset.loading = "1";
      var loaded = older.href;
      fetch(loaded + "&fragment=1", {
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
          template.content.querySelectorAll("li[id]").forEach(function (li) {
            if (document.getElementById(li.id)) li.remove();
          });
          feed.append(template.content);
          refreshTimes();
          window.history.replaceState(null, "", loaded);
          if (result.older_url) older.href = result.older_url;
          else {
            older.remove();
            if (end) end.hidden = false;
          }
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
  var GROUP_WINDOW_MS = 7 * 86400 * 1000;
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

  // Put a card where (time, id) puts it among the newest-first items of
  // list. Returns false when it belongs to an older page than those shown.
  function place(li, list, openEnded) {
    var key = cardKey(li);
    var items = list.querySelectorAll(":scope > li[data-time]");
    for (var i = 0; i < items.length; i++) {
      if (items[i] !== li && newer(key, cardKey(items[i]))) {
        list.insertBefore(li, items[i]);
        return true;
      }
    }
    if (!openEnded && document.querySelector("a.older")) return false;
    list.append(li);
    return true;
  }

  function namesSentence(names) {
    if (names.length <= 1) return names.join("");
    if (names.length === 2) return names[0] + " and " + names[1];
    if (names.length === 3) return names[0] + ", " + names[1] + " and " + names[2];
    return names[0] + ", " + names[1] + " and " + (names.length - 2) + " others";
  }

  // An arrival of the kind an aggregated card gathers, close in time to it,
  // joins that card: in its list, its count and its sentence.
  function joinGroup(li) {
    var key = li.dataset.group;
    if (!key) return false;
    var time = Date.parse(li.dataset.time);
    var groups = feed.querySelectorAll(":scope > li.group");
    for (var i = 0; i < groups.length; i++) {
      var group = groups[i];
      if (group.dataset.group !== key) continue;
      if (Math.abs(Date.parse(group.dataset.time) - time) > GROUP_WINDOW_MS) continue;
      var members = group.querySelector(".group-members");
      li.classList.remove("card");
      li.classList.add("member");
      place(li, members, true);
      var all = members.querySelectorAll(":scope > li");
      var names = [];
      all.forEach(function (m) {
        names.push(m.dataset.actor);
      });
      group.querySelector(".group-summary").textContent =
        namesSentence(names) + " " + group.dataset.predicate + " this week";
      group.querySelector(".group-count").textContent = all.length;
      group.querySelector(".avatar").textContent = all.length;
      if (newer(cardKey(li), cardKey(group))) {
        group.dataset.time = li.dataset.time;
        group.dataset.id = li.dataset.id;
        var when = group.querySelector(".meta time");
        when.setAttribute("datetime", li.dataset.time);
        place(group, feed, true);
      }
      refreshGroupTotals(group);
      group.classList.add("fresh");
      return true;
    }
    return false;
  }

  // Cards that reached the feed, as HTML: each placed by its time, once.
  function receive(html) {
    var template = document.createElement("template");
    template.innerHTML = html.trim();
    var fresh = 0;
    // The fragment's own items (":scope" selects nothing in a fragment).
    Array.prototype.slice.call(template.content.children).forEach(function (li) {
      // Recent arrivals come again (see feed_arrived_since); keep one.
      if (document.getElementById(li.id)) return;
      if (!joinGroup(li) && !place(li, feed, false)) return;
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
  // Ask what arrived since the newest id seen; again at once while there is
  // more. done(ok) is called at the end.
  function fetchArrived(done) {
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
        if (result.count) receive(result.html);
        // A burst bigger than one answer: read the rest at once.
        if (result.more) return fetchArrived(done);
        done(true);
      })
      .catch(function () {
        done(false);
      });
  }

  function poll() {
    if (document.hidden) return window.setTimeout(poll, POLL_MS);
    fetchArrived(function () {
      window.setTimeout(poll, POLL_MS);
    });
  }

  // Pushed: new cards and reaction counts as they are applied (Server-Sent
  // Events). Each time the stream is (re)opened, or the server says
  // announcements may have been lost, the page catches up by asking what
  // arrived meanwhile. Where there is no stream, it polls.
  var liveUrl = feed.dataset.liveUrl;
  if (!liveUrl || !window.EventSource) {
    window.setTimeout(poll, POLL_MS);
    return;
  }
  var stream = new EventSource(liveUrl);
  function catchUp() {
    fetchArrived(function () {});
  }
  stream.addEventListener("ready", function () {
    feed.dataset.stream = "open";
    catchUp();
  });
  stream.addEventListener("resync", catchUp);
  stream.addEventListener("cards", function (message) {
    var data = JSON.parse(message.data);
    var since = Number(feed.dataset.since);
    data.ids.forEach(function (id) {
      if (id > since) since = id;
    });
    feed.dataset.since = since;
    receive(data.html);
  });
  stream.addEventListener("reactions", function (message) {
    var data = JSON.parse(message.data);
    var card = document.getElementById("event-" + data.id);
    if (card) showCounts(card.querySelector(".reactions"), data.counts);
  });
  stream.addEventListener("error", function () {
    feed.dataset.stream = "closed";
    if (stream.readyState === EventSource.CLOSED) {
      // No stream here after all (204, or refused): poll instead.
      window.setTimeout(poll, POLL_MS);
    }
  });
})();
