// vmdash live updates (docs/live-events.md).
//
// htmx's WebSocket extension keeps the connection (#live[ws-connect]) and
// swaps every element the server pushes into the page by its id. This file
// only tells the server which regions the page shows ([data-live]), shows
// the connection's state in the header, asks for a resync after a
// reconnect, lets toasts fade, and hands the sampler's numbers to whoever
// draws them. It keeps no copy of any state.
(function () {
  "use strict";

  var RETRYABLE = [1006, 1011, 1012, 1013]; // the extension reconnects after these
  var LOGGED_OUT = 4401;
  var OFFLINE_AFTER = 4; // failed attempts in a row before "offline"
  var TOAST_SECONDS = 8; // unless #toasts[data-seconds] says otherwise
  var TOASTS_SHOWN = 3; // the newest few; older ones wait hidden until these go

  var indicator = null; // #live, the element that holds the connection
  var opened = false; // has this page ever been connected?
  var failures = 0;
  var lastSubscription = "";

  htmx.config.wsReconnectDelay = function (retry) {
    var ceiling = Math.min(250 * Math.pow(2, retry), 5000);
    return ceiling / 2 + (Math.random() * ceiling) / 2;
  };

  function isLive(el) {
    if (el && el.id === "live") indicator = el;
    return el === indicator && el !== null;
  }

  var connection = ["connecting", "connecting"]; // the socket's state and its text; hosts down come on top

  function texts() {
    try {
      return JSON.parse(indicator.dataset.texts || "{}");
    } catch (e) {
      return {};
    }
  }

  function setState(state, key) {
    if (!indicator) return;
    connection = [state, key || state];
    var t = texts();
    var text = t[key || state] || state;
    var hosts = document.getElementById("live-hosts");
    var down = hosts ? Number(hosts.dataset.count) || 0 : 0;
    indicator.hidden = false;
    // Connected to vmdash, but the event stream says some host does not answer.
    indicator.dataset.state = state === "connected" && down > 0 ? "degraded" : state;
    var label = indicator.querySelector(".live-label");
    if (label) label.textContent = state === "connected" && down > 0 ? "" : text;
    indicator.title = (t.prefix || "Live updates:") + " " + text + (down > 0 ? " · " + hosts.textContent : "");
  }

  function showToasts() {
    // Repeats of one toast collapse into the first ("… ×12"), which stays longer.
    var box = document.getElementById("toasts");
    if (!box) return;
    var byKey = {};
    Array.prototype.slice.call(box.querySelectorAll("[data-live-toast]")).reverse().forEach(function (toast) {
      var first = byKey[toast.dataset.key];
      if (!first) {
        byKey[toast.dataset.key] = toast;
        return;
      }
      var n = (Number(first.dataset.count) || 1) + (Number(toast.dataset.count) || 1);
      first.dataset.count = String(n);
      var count = first.querySelector(".toast-count");
      if (count) {
        count.hidden = false;
        count.textContent = "×" + n;
      }
      box.insertBefore(first, box.firstChild); // the newest on top
      delete first.dataset.fading;
      toast.remove();
    });
    box.querySelectorAll("[data-live-toast]").forEach(function (toast, i) {
      toast.hidden = i >= TOASTS_SHOWN;
    });
    box.querySelectorAll("[data-live-toast]:not([data-fading])").forEach(function (toast) {
      var stamp = String(Date.now()) + Math.random();
      toast.dataset.fading = stamp;
      setTimeout(function () {
        if (toast.dataset.fading === stamp) {
          toast.remove();
          showToasts();
        }
      }, (Number(box.dataset.seconds) || TOAST_SECONDS) * 1000);
    });
  }

  function regions() {
    var seen = {};
    var out = [];
    document.querySelectorAll("[data-live]").forEach(function (el) {
      var region = { region: el.dataset.live };
      if (el.dataset.host) region.host = el.dataset.host;
      if (el.dataset.uuid) region.uuid = el.dataset.uuid;
      var key = JSON.stringify(region);
      if (!seen[key]) {
        seen[key] = true;
        out.push(region);
      }
    });
    return out;
  }

  function subscribe(socket, extra) {
    var message = { type: "subscribe", regions: regions(), query: location.search };
    var key = JSON.stringify(message);
    Object.assign(message, extra || {});
    if (!extra && key === lastSubscription) return;
    lastSubscription = key;
    socket.send(JSON.stringify(message));
  }

  var currentSocket = null;

  document.addEventListener("htmx:wsConnecting", function (event) {
    if (!isLive(event.target)) return;
    setState(opened ? "reconnecting" : "connecting");
  });

  document.addEventListener("htmx:wsOpen", function (event) {
    if (!isLive(event.target)) return;
    currentSocket = event.detail.socketWrapper;
    failures = 0;
    var extra = opened
      ? { resync: true } // events may have been missed while we were away
      : { rendered_at: Number(indicator.dataset.renderedAt) || 0 };
    opened = true;
    setState("connected");
    subscribe(currentSocket, extra);
  });

  document.addEventListener("htmx:wsClose", function (event) {
    if (!isLive(event.target)) return;
    var code = event.detail.event.code;
    currentSocket = null;
    if (code === LOGGED_OUT) {
      setState("offline", "logged-out");
      return;
    }
    failures += 1;
    if (failures >= OFFLINE_AFTER || !navigator.onLine) {
      setState("offline");
    } else {
      setState("reconnecting");
    }
    if (RETRYABLE.indexOf(code) < 0) {
      // e.g. 1001 when the server restarts: the extension would give up.
      var wrapper = event.detail.socketWrapper;
      setTimeout(function () {
        if (document.body.contains(indicator)) wrapper.reconnect();
      }, htmx.config.wsReconnectDelay(failures));
    }
  });

  // The sampler's numbers (vmdash/live/ticks.py) come as JSON, not HTML: they
  // go to whoever draws them (charts.js, the VM list's load bars) as a
  // "vmdash:tick" event, and htmx never sees them.
  document.addEventListener("htmx:wsBeforeMessage", function (event) {
    var text = event.detail.message;
    if (typeof text !== "string" || text.indexOf('{"vmdash-tick"') !== 0) return;
    event.preventDefault();
    var tick;
    try {
      tick = JSON.parse(text);
    } catch (err) {
      return;
    }
    document.dispatchEvent(new CustomEvent("vmdash:tick", { detail: tick }));
  });

  // What the page shows changes after swaps (a filter, a pushed table):
  // subscribe again if the set of regions differs.
  function resubscribe() {
    if (currentSocket) subscribe(currentSocket);
  }
  document.addEventListener("htmx:afterSettle", resubscribe);
  document.addEventListener("htmx:wsAfterMessage", function () {
    resubscribe();
    showToasts();
    setState(connection[0], connection[1]);
  });

  window.addEventListener("offline", function () {
    setState("offline");
  });

  document.addEventListener("DOMContentLoaded", function () {
    indicator = document.getElementById("live");
    if (indicator) setState("connecting");
  });

})();
