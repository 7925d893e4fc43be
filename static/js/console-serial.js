// The serial console: xterm.js on a WebSocket to vmdash's serial consumer.
//
// Binary frames are terminal bytes both ways; text frames from the server are
// JSON status messages. "Take over" reconnects with force=1, which moves the
// console from whoever holds it to us (they are told).
(function () {
  "use strict";
  const root = document.querySelector("[data-console=serial]");
  const part = (role) => root.querySelector(`[data-role=${role}]`);
  const control = (name) => root.querySelector(`[data-action=${name}]`);
  const statusEl = part("status");
  const messageEl = part("message");
  const reconnectBtn = control("reconnect");
  const takeOverBtn = control("take-over");
  const viewOnlyBox = control("view-only");
  const stopWaitingBtn = control("stop-waiting");
  const T = Object.assign({
    waiting: "Waiting for the VM to start…",
    waitingMessage: "The console opens again by itself when the VM runs.",
    stoppedWaiting: "Stopped waiting. Start the VM, then reconnect.",
  }, JSON.parse(document.getElementById("console-strings")?.textContent || "{}"));
  let waitTimer = null;

  const LABELS = {
    connecting: "Connecting…",
    connected: "Connected",
    connectedViewOnly: "Connected (view only)",
    busy: "Console busy",
    "taken-over": "Taken over",
    stopped: "VM stopped",
    "not-running": "VM not running",
    "no-serial": "No serial console",
    denied: "Access denied",
    closed: "Disconnected",
    ended: "Session ended",
    waiting: "Waiting for the VM to start…",
    error: "Error",
  };
  Object.assign(LABELS, T.labels || {});  // translated by the page (console_strings)

  const term = new Terminal({
    cursorBlink: true,
    scrollback: 5000,
    fontSize: 14,
    fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, monospace',
  });
  const fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(part("terminal"));
  fit.fit();
  window.addEventListener("resize", () => fit.fit());

  const encoder = new TextEncoder();
  let ws = null;
  let viewOnly = viewOnlyBox.checked;
  let told = false; // a status message explained the end of this connection

  function setState(state, text) {
    root.dataset.state = state;
    statusEl.textContent = text || LABELS[state] || state;
  }

  function say(text) {
    messageEl.textContent = text;
    messageEl.hidden = !text;
  }

  function stopWaiting() {
    clearTimeout(waitTimer);
    waitTimer = null;
    stopWaitingBtn.hidden = true;
  }

  // The VM stopped: poll its state (1 s, doubling up to 10 s), reconnect once it runs.
  function waitForVm(message) {
    stopWaiting();
    setState("waiting", T.waiting);
    say(`${message} ${T.waitingMessage}`);
    stopWaitingBtn.hidden = false;
    let delay = 1000;
    const poll = async () => {
      if (waitTimer === null) return;
      let st = null;
      try {
        const resp = await fetch(root.dataset.statusUrl, { credentials: "same-origin" });
        st = resp.ok && !resp.redirected ? await resp.json() : null;
        if (resp.redirected || resp.status === 403) {
          stopWaiting();
          setState("denied");
          return;
        }
      } catch (err) {
        st = null;
      }
      if (waitTimer === null) return;
      if (st && st.running) {
        stopWaiting();
        connect(false);
        return;
      }
      delay = Math.min(delay * 2, 10000);
      waitTimer = setTimeout(poll, delay);
    };
    waitTimer = setTimeout(poll, delay);
  }

  function connect(force) {
    stopWaiting();
    if (ws) {
      const old = ws;
      ws = null;
      old.close();
    }
    told = false;
    setState("connecting");
    say("");
    reconnectBtn.hidden = true;
    takeOverBtn.hidden = true;
    const url = new URL(root.dataset.wsPath, window.location.href);
    url.protocol = window.location.protocol === "https:" ? "wss:" : "ws:";
    if (force) url.searchParams.set("force", "1");
    if (viewOnlyBox.checked) url.searchParams.set("view_only", "1");
    const sock = new WebSocket(url);
    sock.binaryType = "arraybuffer";
    ws = sock;
    sock.onmessage = (ev) => {
      if (sock !== ws) return;
      if (typeof ev.data === "string") onStatus(JSON.parse(ev.data));
      else term.write(new Uint8Array(ev.data));
    };
    sock.onclose = () => {
      if (sock !== ws) return;
      ws = null;
      if (!told) {
        setState("closed");
        say("The connection to vmdash closed. Reconnect to open the console again.");
      }
      reconnectBtn.hidden = false;
    };
  }

  function onStatus(msg) {
    if (msg.type !== "status") return;
    if (msg.state === "connected") {
      viewOnly = Boolean(msg.view_only);
      setState("connected", viewOnly ? LABELS.connectedViewOnly : LABELS.connected);
      say(viewOnly ? msg.message : "");
      term.focus();
      return;
    }
    told = true;
    if (msg.state === "stopped" || msg.state === "not-running") {
      reconnectBtn.hidden = false;
      return waitForVm(msg.message);
    }
    setState(msg.state);
    say(msg.message);
    if (msg.state === "busy" || msg.state === "taken-over") {
      takeOverBtn.hidden = viewOnlyBox.checked;
      takeOverBtn.textContent = msg.state === "busy" ? "Take over" : "Take it back";
    }
    reconnectBtn.hidden = false;
  }

  term.onData((data) => {
    if (ws && ws.readyState === WebSocket.OPEN && !viewOnly) ws.send(encoder.encode(data));
  });
  term.onBinary((data) => {
    if (ws && ws.readyState === WebSocket.OPEN && !viewOnly) {
      ws.send(Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff));
    }
  });

  reconnectBtn.addEventListener("click", () => connect(false));
  stopWaitingBtn.addEventListener("click", () => {
    stopWaiting();
    setState("not-running");
    say(T.stoppedWaiting);
  });
  takeOverBtn.addEventListener("click", () => connect(true));
  viewOnlyBox.addEventListener("change", () => connect(false));
  window.addEventListener("pagehide", () => ws && ws.close());

  // For tests: the terminal's text, one string per line.
  root.vmdash = {
    lines: () => {
      const buf = term.buffer.active;
      const out = [];
      for (let i = 0; i < buf.length; i++) out.push(buf.getLine(i).translateToString(true));
      return out;
    },
  };

  connect(false);
})();
