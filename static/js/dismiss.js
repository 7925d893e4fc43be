// Dismiss buttons of alerts and toasts ([data-dismiss]): one listener for the
// whole page, so the templates carry no inline handler (the CSP forbids them).
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-dismiss]");
    if (button && button.parentElement) button.parentElement.remove();
  });
})();
