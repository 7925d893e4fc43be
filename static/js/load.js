// The VM list's CPU and memory bars (domains/_load.html): each sampler tick
// pushed over /ws/events/ (live.js: "vmdash:tick") moves the bars of the rows
// it names. The server renders the same cells when a row or the table is
// pushed; this only keeps the numbers moving in between.
(function () {
  "use strict";

  const UNITS = ["KiB", "MiB", "GiB", "TiB", "PiB"];

  function bytes(value) {
    if (value < 1024) return Math.round(value) + " B";
    let size = value / 1024;
    let unit = 0;
    while (size >= 1024 && unit < UNITS.length - 1) {
      size /= 1024;
      unit += 1;
    }
    return (size === Math.floor(size) ? size.toFixed(0) : size.toFixed(1)) + " " + UNITS[unit];
  }

  function fill(cell, percent, text, title) {
    if (percent === null || percent === undefined) {
      cell.innerHTML = '<span class="muted">–</span>';
      return;
    }
    let meter = cell.querySelector(".meter");
    if (!meter) {
      cell.innerHTML = '<span class="meter"><span></span></span> <span class="load-text"></span>';
      meter = cell.querySelector(".meter");
    }
    const step = Math.max(0, Math.min(20, Math.round(percent / 5)));
    meter.firstElementChild.className = "pct-" + step;
    meter.title = title;
    cell.querySelector(".load-text").textContent = text;
  }

  document.addEventListener("vmdash:tick", function (event) {
    const points = event.detail.points || {};
    Object.keys(points).forEach(function (uuid) {
      const row = document.getElementById("dom-" + uuid);
      if (!row) return;
      // [at, cpu, memory_used, memory_total, …] (stats/history.py FIELDS)
      const p = points[uuid];
      const cpu = row.querySelector('[data-load="cpu"]');
      const used = row.querySelector('[data-load="used"]');
      if (cpu) {
        const text = p[1] === null ? "" : Math.round(p[1]) + " %";
        fill(cpu, p[1], text, (cpu.dataset.label || "CPU") + " " + text);
      }
      if (used) {
        const ok = p[2] !== null && p[3];
        fill(used, ok ? (100 * p[2]) / p[3] : null, ok ? bytes(p[2]) : "", ok ? bytes(p[2]) + " / " + bytes(p[3]) : "");
      }
    });
  });
})();
