// Upload a file into a storage volume over the WebSocket of storage/consumers.py:
// 1 MiB binary frames, at most `window` of them unacknowledged, so neither the
// browser nor the server holds the file whole. Progress shows speed and time left.
const form = document.getElementById("upload-form");
const $ = (id) => document.getElementById(id);

function human(bytes) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (bytes >= 1024 && i < units.length - 1) { bytes /= 1024; i++; }
  return `${bytes.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function clock(seconds) {
  if (!isFinite(seconds)) return "…";
  const m = Math.floor(seconds / 60), s = Math.round(seconds % 60);
  return m ? `${m} min ${s} s` : `${s} s`;
}

function upload(file, volume, isNew) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}${form.dataset.ws}`);
  ws.binaryType = "arraybuffer";
  let chunk = Number(form.dataset.chunk), window_ = 4, offset = 0, acked = 0, inFlight = 0;
  const started = performance.now();
  let finished = false;

  const show = (text) => { $("upload-status").textContent = text; };
  const fail = (text) => { $("upload-error").textContent = text; $("upload-error").hidden = false; };
  const done = () => { $("upload-cancel").hidden = true; $("upload-start").disabled = false; };

  // One pump at a time: chunks must leave in file order, each read once.
  let pumping = false;
  async function pump() {
    if (pumping) return;
    pumping = true;
    try {
      while (inFlight < window_ && offset < file.size && !finished) {
        const start = offset, end = Math.min(offset + chunk, file.size);
        offset = end;
        inFlight++;
        ws.send(await file.slice(start, end).arrayBuffer());
      }
    } finally {
      pumping = false;
    }
  }

  ws.onopen = () => ws.send(JSON.stringify({ type: "start", volume, size: file.size, new: isNew }));
  ws.onmessage = (event) => {
    const m = JSON.parse(event.data);
    if (m.type === "ready") { chunk = m.chunk; window_ = m.window; pump(); }
    else if (m.type === "ack") {
      inFlight--; acked = m.sent;
      const seconds = (performance.now() - started) / 1000, speed = acked / seconds;
      $("upload-bar").value = Math.floor((100 * acked) / file.size);
      show(`${human(acked)} of ${human(file.size)} · ${human(speed)}/s · ${clock((file.size - acked) / speed)} left`);
      pump();
    } else if (m.type === "done") {
      finished = true; $("upload-bar").value = 100;
      show(`${human(file.size)} uploaded into ${m.volume}.`);
      form.dataset.state = "done"; done();
    } else if (m.type === "cancelled") { finished = true; show("Cancelled."); form.dataset.state = "cancelled"; done(); }
    else if (m.type === "error") { finished = true; if (m.message) fail(m.message); form.dataset.state = "error"; done(); }
  };
  ws.onclose = () => { if (!finished) { fail("The connection to the server closed before the upload ended."); done(); } };
  $("upload-cancel").onclick = () => ws.send(JSON.stringify({ type: "cancel" }));
}

form?.addEventListener("submit", (event) => {
  event.preventDefault();
  const file = $("upload-file").files[0];
  if (!file) return;
  const isNew = form.querySelector("input[name=into]:checked").value === "new";
  const volume = isNew ? ($("upload-name").value.trim() || file.name) : $("upload-existing").value;
  $("upload-error").hidden = true;
  $("upload-progress").hidden = false;
  $("upload-cancel").hidden = false;
  $("upload-start").disabled = true;
  form.dataset.state = "running";
  upload(file, volume, isNew);
});
