// The VM page's and host page's graphs, drawn with the vendored uPlot. The
// history comes from the sampler's series (stats/views.py) when the page
// opens, the range changes or the live connection comes back; after that each
// tick's point is pushed over /ws/events/ (live.js sends a "vmdash:tick"
// event). Without pushes (no live connection) it polls, one request per
// interval for all four charts; nothing while the tab is hidden.
(function () {
  "use strict";

  // A point is [time, cpu, memory_used, memory_total, disk_read, disk_write,
  // disk_iops, net_rx, net_tx] (stats/history.py FIELDS).
  const SERIES = {
    cpu: [["cpu", 1]],
    memory: [["used", 2], ["total", 3]],
    disk: [["read", 4], ["write", 5]],
    net: [["received", 7], ["sent", 8]],
  };
  const COLORS = ["#2563eb", "#9ca3af"];
  const HEIGHT = 130;

  function human(value, unit) {
    if (value === null || value === undefined) return "–";
    if (unit === "%") return value.toFixed(value < 10 ? 1 : 0) + " %";
    const names = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (Math.abs(value) >= 1024 && i < names.length - 1) {
      value /= 1024;
      i += 1;
    }
    const text = value.toFixed(i > 0 && value < 10 ? 1 : 0) + " " + names[i];
    return unit === "bytes/s" ? text + "/s" : text;
  }

  function clock(at, ticks) {
    const step = ticks.length > 1 ? ticks[1] - ticks[0] : 3600;
    const options = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }; // short: no AM/PM
    if (step < 60) options.second = "2-digit";
    return new Date(at * 1000).toLocaleTimeString(document.documentElement.lang || [], options);
  }

  function makePlot(figure, texts) {
    const kind = figure.dataset.chart;
    const unit = figure.dataset.unit;
    const box = figure.querySelector(".plot");
    const series = [{}].concat(
      SERIES[kind].map(function (s, i) {
        return {
          label: texts[s[0]] || s[0],
          stroke: COLORS[i],
          width: i === 0 ? 1.5 : 1,
          fill: i === 0 ? "rgba(37, 99, 235, 0.08)" : undefined,
          points: { show: false },
          value: function (u, v) { return human(v, unit); },
        };
      })
    );
    const opts = {
      width: Math.max(box.clientWidth, 200),
      height: HEIGHT,
      series: series,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: unit === "%" ? { y: { range: [0, 100] } } : { y: { range: function (u, min, max) { return [0, Math.max(max * 1.1, 1024)]; } } },
      axes: [
        // One line of local time per tick (uPlot's default adds a date line
        // that overlaps on a narrow chart); seconds only when ticks are closer.
        { space: 72, values: function (u, vals) { return vals.map(function (v) { return clock(v, vals); }); } },
        { size: unit === "%" ? 56 : 76, values: function (u, vals) { return vals.map(function (v) { return human(v, unit); }); } },
      ],
    };
    const empty = [[]].concat(SERIES[kind].map(function () { return []; }));
    return { kind: kind, unit: unit, figure: figure, box: box, plot: new window.uPlot(opts, empty, box) };
  }

  function nowText(chart, last, texts) {
    const cols = SERIES[chart.kind].map(function (s) { return last ? last[s[1]] : null; });
    if (chart.kind === "cpu") return human(cols[0], "%");
    if (chart.kind === "memory") return human(cols[0], "bytes") + " / " + human(cols[1], "bytes");
    return texts[SERIES[chart.kind][0][0]] + " " + human(cols[0], chart.unit) + " · " +
      texts[SERIES[chart.kind][1][0]] + " " + human(cols[1], chart.unit);
  }

  function draw(section, charts, data, texts) {
    const points = data.points;
    const xs = points.map(function (p) { return p[0]; });
    const last = points.length ? points[points.length - 1] : null;
    charts.forEach(function (chart) {
      const cols = SERIES[chart.kind].map(function (s) {
        return points.map(function (p) { return p[s[1]]; });
      });
      chart.plot.setData([xs].concat(cols));
      const out = chart.figure.querySelector("[data-now]");
      out.textContent = nowText(chart, last, texts);
      const first = last ? last[SERIES[chart.kind][0][1]] : null;
      out.dataset.value = first === null || first === undefined ? "" : String(first);
    });
    const note = section.querySelector("[data-charts-note]");
    const why = data.down ? texts.down + " " + data.down : (points.length ? "" : texts.nodata);
    note.textContent = why;
    note.hidden = !why;
    section.dataset.points = String(points.length);
  }

  function setup(section) {
    if (!window.uPlot) return;
    const texts = JSON.parse(section.dataset.texts || "{}");
    const charts = Array.from(section.querySelectorAll("[data-chart]")).map(function (f) {
      return makePlot(f, texts);
    });
    let range = "10m";
    let every = 2000;
    let timer = null;
    let stopped = false;
    let data = null; // the last series drawn: {points, range, down, interval}
    let pushedAt = 0; // Date.now() of the last pushed point
    const host = section.dataset.host;
    const key = section.dataset.uuid || "";

    function schedule() {
      clearTimeout(timer);
      if (!stopped) timer = setTimeout(poll, every);
    }

    function pushed(event) {
      const tick = event.detail;
      if (stopped || !data || tick.host !== host || !tick.points || !tick.points[key]) return;
      const point = tick.points[key];
      const points = data.points;
      if (points.length && points[points.length - 1][0] >= point[0]) return;
      points.push(point);
      const start = point[0] - (data.range || 600);
      while (points.length && points[0][0] < start) points.shift();
      data.down = "";
      every = Math.max(1000, (tick.interval || 2) * 1000);
      pushedAt = Date.now();
      if (!document.hidden) draw(section, charts, data, texts);
    }

    function poll(always) {
      if (document.hidden || !section.isConnected) return schedule();
      // Pushed points arrive: nothing to ask (a missed one leaves a gap of a tick).
      if (always !== true && data && Date.now() - pushedAt < 3 * every) return schedule();
      const url = section.dataset.charts + "?range=" + encodeURIComponent(range);
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) {
          if (r.status === 403 || r.status === 404) { stopped = true; return null; }
          return r.ok ? r.json() : null;
        })
        .then(function (fresh) {
          if (fresh) {
            data = fresh;
            every = Math.max(1000, (data.interval || 2) * 1000);
            draw(section, charts, data, texts);
          }
        })
        .catch(function () { /* offline for a moment: the next poll tries again */ })
        .finally(schedule);
    }

    section.querySelectorAll("[data-range]").forEach(function (button) {
      button.addEventListener("click", function () {
        range = button.dataset.range;
        section.querySelectorAll("[data-range]").forEach(function (b) {
          b.setAttribute("aria-pressed", String(b === button));
        });
        poll(true);
      });
    });
    document.addEventListener("vmdash:tick", pushed);
    // Back after a lost connection: what was missed comes from the history.
    document.addEventListener("htmx:wsOpen", function () { poll(true); });
    window.addEventListener("resize", function () {
      charts.forEach(function (c) { c.plot.setSize({ width: Math.max(c.box.clientWidth, 200), height: HEIGHT }); });
    });
    document.addEventListener("visibilitychange", function () { if (!document.hidden) poll(true); });
    poll(true);
  }

  function start() {
    document.querySelectorAll("[data-charts]").forEach(setup);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
