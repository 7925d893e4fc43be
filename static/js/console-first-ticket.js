// Ask for the console's first ticket while its modules load: console-vnc.js
// takes this promise instead of asking again. A classic script placed right
// after the console's markup, so it runs before the module graph is fetched.
(function () {
  "use strict";
  var root = document.querySelector('[data-console="vnc"]');
  if (!root || !root.dataset.ticketUrl) return;
  window.vmdashFirstTicket = fetch(root.dataset.ticketUrl, {
    method: "POST",
    headers: { "X-CSRFToken": root.dataset.csrf },
    credentials: "same-origin",
  });
})();
