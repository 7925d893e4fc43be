// The graphical console: noVNC through vmdash's console proxy.
//
// The page asks vmdash for a single-use ticket (POST, CSRF-protected), then
// opens the proxy's WebSocket with it. The VNC password, if any, never comes
// here: the proxy answers the VNC challenge itself. When a connection fails
// or ends, the page asks vmdash why (VM state, proxy up) and says so.
// noVNC as one module (novnc.bundle.js, built from the vendored core/ with
// esbuild, see static/vendor/VERSIONS.md): one request instead of ~50.
import { RFB, KeyTable, keysyms } from "../vendor/novnc/novnc.bundle.js";

const root = document.querySelector("[data-console=vnc]");
const part = (role) => root.querySelector(`[data-role=${role}]`);
const control = (name) => root.querySelector(`[data-action=${name}]`);
const statusEl = part("status");
const messageEl = part("message");
const screen = part("screen");
const reconnectBtn = control("reconnect");
const viewOnlyBox = control("view-only");
const scaleBox = control("scale");
const stopWaitingBtn = control("stop-waiting");
// Translated strings from the page (console/_vnc.html), English as a fallback.
const T = Object.assign({
  waiting: "Waiting for the VM to start…",
  waitingMessage: "The VM is not running. The console opens again by itself when it runs.",
  stoppedWaiting: "Stopped waiting. Start the VM, then reconnect.",
  sessionEnded: "Your session ended: log in again.",
}, JSON.parse(document.getElementById("console-strings")?.textContent || "{}"));

const LABELS = {
  connecting: "Connecting…",
  checking: "Disconnected, checking why…",
  connected: "Connected",
  "not-running": "VM not running",
  "no-graphics": "No graphics device",
  "unsupported-graphics": "No VNC display",
  "loopback-only": "Display unreachable",
  "proxy-down": "Console proxy unreachable",
  denied: "Access denied",
  refused: "Connection refused",
  closed: "Disconnected",
  popped: "Opened in its own window",
  error: "Error",
};
const INPUT_CONTROLS = ["ctrl-alt-del", "keys", "paste"];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let rfb = null;
let proxyOrigin = "";
let connected = false;
let attempt = 0;
let securityReason = "";
let waitTimer = null; // polling the VM's state until it runs again
let retries = 0; // reconnects left after the VM came back (its display may lag)

function setState(state, text) {
  root.dataset.state = state;
  statusEl.textContent = text || LABELS[state] || state;
  const live = state === "connected";
  for (const name of INPUT_CONTROLS) {
    control(name).disabled = !live || (rfb && rfb.viewOnly);
  }
  control("screenshot").disabled = !live;
}

function say(text) {
  messageEl.textContent = text;
  messageEl.hidden = !text;
}

function fail(state, text) {
  setState(state);
  say(text);
  reconnectBtn.hidden = false;
}

function stopWaiting() {
  clearTimeout(waitTimer);
  waitTimer = null;
  stopWaitingBtn.hidden = true;
}

// The VM stopped: ask vmdash about its state, less and less often (1 s up to
// 10 s), and reconnect without a click once it runs again.
function waitForVm(what) {
  stopWaiting();
  setState("waiting", T.waiting);
  say(`${what}. ${T.waitingMessage}`);
  reconnectBtn.hidden = false;
  stopWaitingBtn.hidden = false;
  const mine = attempt;
  let delay = 1000;
  const poll = async () => {
    if (mine !== attempt || waitTimer === null) return;
    let st = null;
    try {
      const resp = await fetch(root.dataset.statusUrl, { credentials: "same-origin" });
      if (resp.redirected || resp.status === 403) {
        stopWaiting();
        return fail("denied", resp.redirected ? T.sessionEnded : "You may no longer open the console of this VM.");
      }
      st = resp.ok ? await resp.json() : null;
    } catch (err) {
      st = null; // vmdash restarting: keep waiting
    }
    if (mine !== attempt || waitTimer === null) return;
    if (st && st.running) {
      stopWaiting();
      retries = 3;
      connect();
      return;
    }
    delay = Math.min(delay * 2, 10000);
    waitTimer = setTimeout(poll, delay);
  };
  waitTimer = setTimeout(poll, delay);
}

function dropConnection() {
  if (rfb) {
    const old = rfb;
    rfb = null;
    old.disconnect();
  }
  connected = false;
}

async function connect() {
  dropConnection();
  stopWaiting();
  const mine = ++attempt;
  securityReason = "";
  setState("connecting");
  say("");
  reconnectBtn.hidden = true;
  const body = new URLSearchParams();
  if (viewOnlyBox.checked && !viewOnlyBox.disabled) body.set("view_only", "1");
  // The page asked for the first ticket already (see _vnc.html), unless the
  // person wants view-only, which that request did not say.
  const early = window.vmdashFirstTicket;
  window.vmdashFirstTicket = null;
  let resp, answer = null;
  try {
    resp = early && !body.has("view_only") ? await early : await fetch(root.dataset.ticketUrl, {
      method: "POST",
      headers: { "X-CSRFToken": root.dataset.csrf },
      body,
      credentials: "same-origin",
    });
    answer = await resp.json().catch(() => null);
  } catch (err) {
    return fail("error", `vmdash does not answer: ${err.message}`);
  }
  if (mine !== attempt) return;
  if (!resp.ok || !answer || answer.state !== "ok") {
    if (resp.status === 403) return fail("denied", "You may not open the console of this VM.");
    if (resp.status === 404 && !answer) return fail("denied", "This VM does not exist, or you may not see it.");
    if (resp.redirected || resp.status === 401) return fail("denied", "Your session ended: log in again.");
    return fail((answer && answer.state) || "error", (answer && answer.message) || `vmdash answered ${resp.status}.`);
  }
  proxyOrigin = new URL(answer.url).origin.replace(/^http/, "ws");
  const client = new RFB(screen, answer.url, { shared: true, wsProtocols: ["binary"] });
  rfb = client;
  client.viewOnly = answer.view_only;
  client.scaleViewport = scaleBox.checked;
  client.resizeSession = false;
  client.background = "#111";
  client.addEventListener("connect", () => {
    if (client !== rfb) return;
    connected = true;
    retries = 0;
    setState("connected", answer.view_only ? "Connected (view only)" : "Connected");
    watchFirstFrame(client);
    client.focus();
  });
  client.addEventListener("disconnect", () => {
    if (client === rfb) diagnose();
  });
  client.addEventListener("securityfailure", (e) => {
    securityReason = e.detail.reason || "";
  });
  client.addEventListener("credentialsrequired", () => {
    securityReason = "the VNC server asked for credentials the console proxy could not give";
    client.disconnect();
  });
}

// Why did the connection end (or never start)? Ask vmdash, then say it plainly.
async function diagnose() {
  const wasConnected = connected;
  connected = false;
  rfb = null;
  setState("checking");
  let st = null;
  // A VM being stopped closes its display a moment before libvirt reports it
  // off: when the display went away but the VM still "runs", look again.
  for (const pause of [0, 300, 700, 1500]) {
    if (pause) await sleep(pause);
    try {
      const resp = await fetch(root.dataset.statusUrl, { credentials: "same-origin" });
      if (resp.redirected) return fail("denied", T.sessionEnded);
      if (resp.status === 403) return fail("denied", "You may no longer open the console of this VM.");
      st = resp.ok ? await resp.json() : null;
    } catch (err) {
      return fail("error", `vmdash does not answer: ${err.message}`);
    }
    if (!wasConnected || !st || !st.proxy || !st.running) break;
  }
  if (st && !st.proxy) return fail("proxy-down", st.proxy_message);
  if (st && !st.running) {
    const what = st.label ? `The VM is ${st.label}` : (st.message || "The VM is not running");
    return waitForVm(what);
  }
  if (!wasConnected && retries > 0) {
    // Just started again: its display may not listen yet.
    retries--;
    await sleep(1000);
    return connect();
  }
  if (!wasConnected) {
    return fail("refused", securityReason
      ? `The console could not log in to the VM's display: ${securityReason}.`
      : "The console proxy refused the connection or could not reach the VM's display (the ticket may have expired). Reconnect to try again with a new ticket. "
        + `If it keeps failing, this browser may not reach the console proxy at ${proxyOrigin}: see VMDASH_CONSOLE_PUBLIC_URL in docs/consoles.md.`);
  }
  fail("closed", "The console connection closed. Reconnect to open it again.");
}

// First frame: the first time the canvas shows anything but black. Recorded
// for the benchmark (data-first-frame-ms, a performance mark) and tests.
function watchFirstFrame(client) {
  const started = performance.now();
  const probe = document.createElement("canvas");
  probe.width = probe.height = 8;
  const pixels = probe.getContext("2d", { willReadFrequently: true });
  const check = () => {
    if (client !== rfb) return;
    const canvas = screen.querySelector("canvas");
    if (canvas && canvas.width > 0 && canvas.height > 0) {
      pixels.drawImage(canvas, 0, 0, 8, 8);
      const data = pixels.getImageData(0, 0, 8, 8).data;
      for (let i = 0; i < data.length; i += 4) {
        if (data[i] + data[i + 1] + data[i + 2] > 0) {
          root.dataset.firstFrameMs = String(Math.round(performance.now()));
          performance.mark("vmdash-console-first-frame");
          return;
        }
      }
    }
    if (performance.now() - started < 60000) requestAnimationFrame(check);
  };
  requestAnimationFrame(check);
}

// Key combinations by KeyboardEvent.code; keysyms for servers without scancodes.
const KEYSYM_BY_CODE = {
  ControlLeft: KeyTable.XK_Control_L,
  AltLeft: KeyTable.XK_Alt_L,
  ShiftLeft: KeyTable.XK_Shift_L,
  MetaLeft: KeyTable.XK_Super_L,
  Delete: KeyTable.XK_Delete,
  Backspace: KeyTable.XK_BackSpace,
  Tab: KeyTable.XK_Tab,
  Escape: KeyTable.XK_Escape,
  Enter: KeyTable.XK_Return,
  PrintScreen: KeyTable.XK_Print,
  KeyC: KeyTable.XK_c,
};
for (let n = 1; n <= 12; n++) KEYSYM_BY_CODE[`F${n}`] = KeyTable.XK_F1 + n - 1;

function sendCombo(spec) {
  if (!rfb || !connected) return;
  const codes = spec.split("+");
  for (const code of codes) rfb.sendKey(KEYSYM_BY_CODE[code], code, true);
  for (const code of codes.reverse()) rfb.sendKey(KEYSYM_BY_CODE[code], code, false);
  rfb.focus();
}

// Paste as keystrokes: each character as a key press, with Shift where the US
// layout needs it, paced so that a BIOS or an installer keeps up.
const SHIFTED = new Set('ABCDEFGHIJKLMNOPQRSTUVWXYZ~!@#$%^&*()_+{}|:"<>?');

async function typeText(text) {
  const client = rfb;
  for (const ch of text.replace(/\r\n?/g, "\n")) {
    if (client !== rfb || !connected) return;
    let keysym;
    if (ch === "\n") keysym = KeyTable.XK_Return;
    else if (ch === "\t") keysym = KeyTable.XK_Tab;
    else keysym = keysyms.lookup(ch.codePointAt(0));
    const shift = SHIFTED.has(ch);
    if (shift) client.sendKey(KeyTable.XK_Shift_L, null, true);
    client.sendKey(keysym, null, true);
    client.sendKey(keysym, null, false);
    if (shift) client.sendKey(KeyTable.XK_Shift_L, null, false);
    await sleep(ch === "\n" ? 40 : 8);
  }
}

function screenshot() {
  if (!rfb) return;
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  rfb.toBlob((blob) => {
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = `${root.dataset.vm}-${stamp}.png`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  }, "image/png");
}

reconnectBtn.addEventListener("click", connect);
stopWaitingBtn.addEventListener("click", () => {
  stopWaiting();
  fail("not-running", T.stoppedWaiting);
});
viewOnlyBox.addEventListener("change", connect); // enforced by the proxy: needs a new ticket
scaleBox.addEventListener("change", () => {
  if (rfb) rfb.scaleViewport = scaleBox.checked;
});
control("ctrl-alt-del").addEventListener("click", () => {
  if (rfb) {
    rfb.sendCtrlAltDel();
    rfb.focus();
  }
});
control("keys").addEventListener("change", (e) => {
  if (e.target.value) sendCombo(e.target.value);
  e.target.value = "";
});
const pasteDialog = part("paste-dialog");
control("paste").addEventListener("click", () => pasteDialog.showModal());
pasteDialog.addEventListener("close", () => {
  const box = part("paste-text");
  if (pasteDialog.returnValue === "type" && box.value) typeText(box.value);
  box.value = "";
});
control("fullscreen").addEventListener("click", () => {
  if (document.fullscreenElement) document.exitFullscreen();
  else screen.requestFullscreen().catch((err) => say(`Full screen refused: ${err.message}`));
});
control("screenshot").addEventListener("click", screenshot);
const popout = control("popout");
if (popout) {
  popout.addEventListener("click", () => {
    window.open(root.dataset.popoutUrl, `vmdash-console-${root.dataset.uuid}`, "popup,width=1060,height=720");
    dropConnection();
    fail("popped", "The console is open in its own window. Reconnect to view it here as well.");
  });
}
window.addEventListener("pagehide", dropConnection);

// For tests and the benchmark: type text as the paste dialog does.
root.vmdash = { typeText, connect };

connect();
