/* The desk's only script: draws the overview's charts with the vendored uPlot from the JSON
   in the page, and keeps the send progress page current. Every figure is also in the page
   as a table or text, so nothing depends on this script. */
(function () {
  "use strict";

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function readJson(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function size(box) {
    var width = Math.max(240, Math.floor(box.getBoundingClientRect().width));
    return { width: width, height: width < 500 ? 220 : 280 };
  }

  function growth(box, data, labels) {
    var opts = Object.assign(size(box), {
      series: [
        { label: labels[3] },
        { label: labels[0], stroke: css("--joins"), width: 2, scale: "n" },
        { label: labels[1], stroke: css("--leaves"), width: 2, scale: "n" },
        { label: labels[2], stroke: css("--active"), width: 2, scale: "total" }
      ],
      axes: [
        { stroke: css("--text"), grid: { stroke: css("--line") } },
        { scale: "n", stroke: css("--text"), grid: { stroke: css("--line") } },
        { scale: "total", side: 1, stroke: css("--text"), grid: { show: false } }
      ],
      scales: {
        x: { time: true },
        n: { range: function (u, min, max) { return [0, Math.max(1, max)]; } },
        total: { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } }
      }
    });
    return new uPlot(opts, [data.x, data.joins, data.leaves, data.active], box);
  }

  function issues(box, data, labels) {
    var bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.6, 60] }) : null;
    var opts = Object.assign(size(box), {
      series: [
        { label: labels[5], value: function (u, v) { return v == null ? "" : data.labels[v] || ""; } },
        { label: labels[0], stroke: css("--active"), fill: css("--bars"), paths: bars, scale: "n", points: { show: false } },
        { label: labels[1], stroke: css("--bounce"), width: 2, scale: "%" },
        { label: labels[2], stroke: css("--complaint"), width: 2, scale: "%" },
        { label: labels[3], stroke: css("--unsubscribe"), width: 2, scale: "%" },
        { label: labels[4], stroke: css("--limit"), width: 1, dash: [6, 4], scale: "%", points: { show: false } }
      ],
      axes: [
        {
          stroke: css("--text"), grid: { show: false },
          values: function (u, ticks) { return ticks.map(function (t) { return data.labels[t] || ""; }); }
        },
        { scale: "n", stroke: css("--text"), grid: { stroke: css("--line") } },
        {
          scale: "%", side: 1, stroke: css("--text"), grid: { show: false },
          values: function (u, ticks) { return ticks.map(function (t) { return t + " %"; }); }
        }
      ],
      scales: {
        x: { time: false, range: function () { return [-0.5, Math.max(0.5, data.x.length - 0.5)]; } },
        n: { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } },
        "%": { range: function (u, min, max) { return [0, Math.max(0.5, max * 1.1)]; } }
      }
    });
    return new uPlot(opts, [data.x, data.delivered, data.bounce, data.complaint, data.unsubscribe, data.line], box);
  }

  var dark = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  function scheme() { return dark && dark.matches ? "dark" : "light"; }

  function charts() {
    if (typeof uPlot === "undefined") { return; }
    document.querySelectorAll("[data-chart]").forEach(function (box) {
      var data = readJson(box.getAttribute("data-chart"));
      var labels = JSON.parse(box.getAttribute("data-labels") || "[]");
      if (!data || !data.x.length) { return; }
      function draw() {
        var made = data.kind === "growth" ? growth(box, data, labels) : issues(box, data, labels);
        box.setAttribute("data-drawn", scheme());
        return made;
      }
      var plot = draw();
      window.addEventListener("resize", function () { plot.setSize(size(box)); });
      // the axes' and grid's colours are read when a chart is drawn: a scheme that changes
      // while the page is open (a system that turns dark at dusk) draws it again, else its
      // labels would stay dark on the dark cards
      if (dark && dark.addEventListener) {
        dark.addEventListener("change", function () { plot.destroy(); plot = draw(); });
      }
    });
  }

  function progress() {
    var box = document.getElementById("progress");
    if (!box) { return; }
    var url = box.getAttribute("data-progress");
    var key; // the issue shown; a new one (the send just made it) reloads the page
    // just started: the new process takes the lease (and makes its issue) in a moment
    var starting = window.location.search.indexOf("started=1") >= 0 ? 60 : 0;
    function set(id, value) {
      var node = document.getElementById(id);
      if (node) { node.textContent = value; }
    }
    function poll() {
      fetch(url, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.json(); })
        .then(function (p) {
          if (key === undefined) { key = p.key; }
          if (p.key !== key) { window.location.replace(window.location.pathname); return; }
          if (p.holder) { starting = 0; }
          set("progress-status", p.status || "");
          set("progress-sent", p.sent);
          set("progress-done", p.done);
          set("progress-total", p.total);
          set("progress-holder", p.holder || "—");
          var bar = document.getElementById("progress-bar");
          if (bar) { bar.max = Math.max(1, p.total); bar.value = p.done; }
          box.setAttribute("data-status", p.status || "");
          if (p.holder || p.status === "sending" || starting-- > 0) { setTimeout(poll, 1000); }
        })
        .catch(function () { setTimeout(poll, 3000); });
    }
    poll();
  }

  document.addEventListener("DOMContentLoaded", function () {
    charts();
    progress();
  });
})();
