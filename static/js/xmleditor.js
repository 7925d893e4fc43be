// The XML tab's editor (domains/definitions.py): a textarea with line numbers
// beside it, Tab indenting by two spaces, and the line libvirt's or the
// parser's error names marked and scrolled to. Plain DOM, no library: the
// definition is text and the server checks everything.
(function () {
  "use strict";

  function setUp(area) {
    if (area.dataset.ready) return;
    area.dataset.ready = "1";
    const wrap = document.createElement("div");
    wrap.className = "xml-editor-wrap";
    const gutter = document.createElement("pre");
    gutter.className = "xml-gutter";
    gutter.setAttribute("aria-hidden", "true");
    area.parentNode.insertBefore(wrap, area);
    wrap.appendChild(gutter);
    wrap.appendChild(area);

    let marked = 0;
    function number() {
      const lines = area.value.split("\n").length;
      let text = "";
      for (let i = 1; i <= lines; i += 1) text += (i === marked ? "▶" : "") + i + "\n";
      gutter.textContent = text;
      gutter.scrollTop = area.scrollTop;
    }
    area.addEventListener("input", number);
    area.addEventListener("scroll", function () { gutter.scrollTop = area.scrollTop; });
    area.addEventListener("keydown", function (event) {
      if (event.key !== "Tab" || event.shiftKey || event.ctrlKey || event.altKey) return;
      event.preventDefault(); // Shift+Tab still leaves the field
      const start = area.selectionStart;
      area.setRangeText("  ", start, area.selectionEnd, "end");
      number();
    });
    area.markLine = function (line) {
      marked = line;
      number();
      const height = area.scrollHeight / Math.max(1, area.value.split("\n").length);
      area.scrollTop = Math.max(0, (line - 3) * height);
      gutter.scrollTop = area.scrollTop;
    };
    number();
  }

  function markError(root) {
    const scope = root || document;
    const result = scope.matches && scope.matches("[data-error-line]")
      ? scope : scope.querySelector("[data-error-line]");
    const area = document.querySelector("textarea[data-xml-editor]");
    if (result && area && area.markLine) area.markLine(Number(result.dataset.errorLine));
  }

  function init() {
    document.querySelectorAll("textarea[data-xml-editor]").forEach(setUp);
    markError();
  }
  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("htmx:afterSettle", function (event) { markError(event.target); });
})();
