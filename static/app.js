// berth console: keeps an open page current from the server's event stream
// (/v1/events). Every page is complete without this file; it only saves a
// reload. No inline scripts anywhere: the pages can run under a strict CSP.
(function () {
  "use strict";

  var api = document.body.getAttribute("data-api");
  if (!api || !window.EventSource || !window.fetch) {
    return;
  }

  var FINISHED = { done: true, failed: true, cancelled: true };

  // How many events have arrived per job or container id. A re-read that
  // started before an event arrived may answer with older state than the
  // event carried: its answer is dropped (later changes come as events).
  var eventsSeen = {};
  function noteEvent(id) { eventsSeen[id] = (eventsSeen[id] || 0) + 1; }

  // A job only moves forward: queued, running, then finished.
  function rank(status) {
    if (status === "queued") { return 0; }
    if (status === "running") { return 1; }
    return 2;
  }

  function all(selector, root) {
    return Array.prototype.slice.call((root || document).querySelectorAll(selector));
  }

  function unique(values) {
    return values.filter(function (v, i) { return values.indexOf(v) === i; });
  }

  // The same text the server renders: "2026-11-03 14:22:05 UTC".
  function timeText(iso) {
    return iso.replace("T", " ").replace(/(\.\d+)?Z$/, " UTC");
  }

  function setTime(element, iso) {
    if (iso) {
      element.setAttribute("datetime", iso);
      element.textContent = timeText(iso);
    } else {
      element.removeAttribute("datetime");
      element.textContent = "\u2014";
    }
  }

  function setBadge(element, status) {
    element.textContent = status;
    element.className = element.className.replace(/\bst-[a-z]+\b/g, "").trim() + " st-" + status;
  }

  // Mirrors JobView::progress_value on the server.
  function progressOf(job) {
    if (job.status === "done") { return 100; }
    if (job.status === "queued") { return 0; }
    if (job.status === "running") { return job.progress; }
    return job.progress || 0;
  }

  function duration(job) {
    if (!job.started_at || !job.finished_at) { return "\u2014"; }
    var s = Math.max(0, Math.round((Date.parse(job.finished_at) - Date.parse(job.started_at)) / 1000));
    if (s === 0) { return "under a second"; }
    if (s < 60) { return s + " s"; }
    if (s < 3600) { return Math.floor(s / 60) + " min " + (s % 60) + " s"; }
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }

  function showStale() {
    all("[data-stale]").forEach(function (notice) { notice.hidden = false; });
  }

  function updateJob(job) {
    var scopes = all('[data-job="' + job.id + '"]');
    if (scopes.length === 0) {
      // A job this page does not show, for a list that would show it.
      if (document.querySelector('[data-jobs-of="*"], [data-jobs-of="' + job.entity_id + '"]')) {
        showStale();
      }
      return;
    }
    var progress = progressOf(job);
    scopes.forEach(function (scope) {
      var shown = scope.querySelector('[data-job-field="status"]');
      if (shown && rank(shown.textContent.trim()) > rank(job.status)) {
        return;
      }
      all('[data-job-field="status"]', scope).forEach(function (el) { setBadge(el, job.status); });
      all('[data-job-field="progress"]', scope).forEach(function (el) {
        if (progress === null || progress === undefined) {
          el.removeAttribute("value");
          el.textContent = "working";
        } else {
          el.value = progress;
          el.textContent = progress + "%";
        }
      });
      all('[data-job-field="progress-text"]', scope).forEach(function (el) {
        el.textContent = progress === null || progress === undefined ? "working" : progress + "%";
      });
      all('[data-job-field="started_at"]', scope).forEach(function (el) { setTime(el, job.started_at); });
      all('[data-job-field="finished_at"]', scope).forEach(function (el) { setTime(el, job.finished_at); });
      all('[data-job-field="duration"]', scope).forEach(function (el) { el.textContent = duration(job); });
      all('[data-job-field="error"]', scope).forEach(function (el) {
        el.textContent = job.error || "";
        el.hidden = !job.error;
      });
    });
    all('[data-job-log="' + job.id + '"]').forEach(function () { refreshLog(job.id); });
  }

  // The log is not in the event; fetch it, at most one request at a time.
  var logPending = {};
  function refreshLog(id) {
    if (logPending[id]) { logPending[id] = "again"; return; }
    logPending[id] = true;
    fetch(api + "/jobs/" + id + "/log", { headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (!body) { return; }
        all('[data-job-log="' + id + '"]').forEach(function (list) {
          var items = body.lines.map(function (line) {
            var item = document.createElement("li");
            var time = document.createElement("time");
            setTime(time, line.time);
            var text = document.createElement("span");
            text.textContent = line.text;
            item.appendChild(time);
            item.appendChild(document.createTextNode(" "));
            item.appendChild(text);
            return item;
          });
          list.replaceChildren.apply(list, items);
        });
        all("[data-job-log-empty]").forEach(function (el) { el.hidden = body.lines.length > 0; });
      })
      .catch(function () { /* the next event or a reload brings it */ })
      .then(function () {
        var again = logPending[id] === "again";
        delete logPending[id];
        if (again) { refreshLog(id); }
      });
  }

  function amount(value, units) {
    if (value === undefined || value === null) { return "\u2014"; }
    return units ? value + " " + units + "iB" : value;
  }

  function updateContainer(container) {
    var scopes = all('[data-container="' + container.id + '"]');
    if (scopes.length === 0) {
      // A container the list does not show: stale only if the list would
      // show it (a list filtered by node shows that node's alone).
      var list = document.querySelector("[data-containers]");
      var node = list && list.getAttribute("data-containers-node");
      if (list && container.status !== "deleted" && (!node || container.node === node)) {
        showStale();
      }
      return;
    }
    var p = container.parameters || {};
    var text = {
      hostname: p.hostname || "\u2014",
      ipadd: p.ipadd || "\u2014",
      nameserver: p.nameserver || "\u2014",
      cpus: p.cpus || "\u2014",
      memory: amount(p.memsize, p.memsize_units),
      disk: amount(p.size, p.size_units)
    };
    scopes.forEach(function (scope) {
      all('[data-container-field="status"]', scope).forEach(function (el) { setBadge(el, container.status); });
      Object.keys(text).forEach(function (field) {
        all('[data-container-field="' + field + '"]', scope).forEach(function (el) { el.textContent = text[field]; });
      });
      all("[data-enabled-when]", scope).forEach(function (el) {
        var enabled = el.getAttribute("data-enabled-when").split(" ").indexOf(container.status) >= 0;
        if (el.tagName === "A") {
          if (enabled) { el.removeAttribute("aria-disabled"); } else { el.setAttribute("aria-disabled", "true"); }
        } else {
          el.disabled = !enabled;
        }
      });
    });
    if (container.status === "deleted" && document.querySelector('[data-jobs-of="' + container.id + '"]')) {
      showStale();
    }
  }

  function getJson(path) {
    return fetch(api + path, { headers: { Accept: "application/json" } }).then(function (response) {
      if (response.status === 404) { return null; }
      if (!response.ok) { throw new Error(path + ": " + response.status); }
      return response.json();
    });
  }

  // Events sent before the stream was open (or while it was down) are
  // lost: read again what this page shows that may have changed.
  function resync() {
    unique(all("[data-job]").filter(function (scope) {
      var badge = scope.querySelector('[data-job-field="status"]');
      return !badge || !FINISHED[badge.textContent.trim()];
    }).map(function (scope) { return scope.getAttribute("data-job"); })).forEach(function (id) {
      var seen = eventsSeen[id] || 0;
      getJson("/jobs/" + id).then(function (job) {
        if (job && (eventsSeen[id] || 0) === seen) { updateJob(job); }
      }).catch(function () {});
    });
    unique(all("[data-container]").map(function (scope) {
      return scope.getAttribute("data-container");
    })).forEach(function (id) {
      var seen = eventsSeen[id] || 0;
      getJson("/containers/" + id).then(function (body) {
        if (body && (eventsSeen[id] || 0) === seen) { updateContainer(body.container); }
      }).catch(function () {});
    });
  }

  all("[data-reload]").forEach(function (link) {
    link.setAttribute("href", window.location.pathname + window.location.search);
  });

  var live = document.querySelector("[data-live]");
  var source = new EventSource(api + "/events");
  source.addEventListener("open", function () {
    if (live) { live.hidden = false; }
    resync();
  });
  source.addEventListener("error", function () {
    // EventSource reconnects by itself; resync runs again on "open".
    if (live) { live.hidden = true; }
  });
  source.addEventListener("job", function (event) {
    var job = JSON.parse(event.data);
    noteEvent(job.id);
    updateJob(job);
  });
  source.addEventListener("container", function (event) {
    var container = JSON.parse(event.data);
    noteEvent(container.id);
    updateContainer(container);
  });
  source.addEventListener("lagged", resync);
  // A container's usage graphs are drawn on the server: a new sample for
  // one this page shows fetches them again, at most one request at a time.
  var usagePending = {};
  function refreshUsage(id) {
    if (usagePending[id]) { usagePending[id] = "again"; return; }
    usagePending[id] = true;
    fetch("/containers/" + id + "/usage", { headers: { Accept: "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html")
          .querySelector('[data-usage="' + id + '"]');
        all('[data-usage="' + id + '"]').forEach(function (shown) {
          if (!fresh) { return; }
          // The table's open or closed state is the reader's; keep it.
          var open = shown.querySelector("details[open]");
          var copy = document.importNode(fresh, true);
          if (open) { all("details", copy).forEach(function (d) { d.open = true; }); }
          shown.replaceWith(copy);
        });
      })
      .catch(function () { /* the next sample brings it */ })
      .then(function () {
        var again = usagePending[id] === "again";
        delete usagePending[id];
        if (again) { refreshUsage(id); }
      });
  }
  source.addEventListener("stats", function (event) {
    var usage = JSON.parse(event.data);
    if (document.querySelector('[data-usage="' + usage.container_id + '"]')) {
      refreshUsage(usage.container_id);
    }
  });
  // Close the stream before the page goes, so the browser does not report
  // an interrupted connection.
  window.addEventListener("pagehide", function () { source.close(); });
}());
