// celeriac dashboard: live updates over server-sent events, action feedback, and the overview charts.
(function () {
  "use strict";
  const prefix = document.body.dataset.prefix || "";
  const dot = document.getElementById("live-dot");

  function connect() {
    const source = new EventSource(prefix + "/api/live");
    source.onopen = () => dot && dot.classList.add("on");
    source.onerror = () => dot && dot.classList.remove("on");
    source.addEventListener("update", () => htmx.trigger(document.body, "live"));
    source.addEventListener("tick", () => { htmx.trigger(document.body, "tick"); drawCharts(); });
  }

  function toast(text, bad) {
    const box = document.getElementById("toast");
    box.textContent = text;
    box.className = bad ? "show bad" : "show";
    clearTimeout(box._timer);
    box._timer = setTimeout(() => { box.className = ""; }, 4000);
  }

  document.addEventListener("htmx:configRequest", (event) => {
    const form = event.detail.elt.closest("form[data-task-path]");
    if (form) event.detail.path += encodeURIComponent(form.elements.task.value);
  });

  document.addEventListener("htmx:afterRequest", (event) => {
    if (event.detail.requestConfig.verb === "get") return;
    let body = {};
    try { body = JSON.parse(event.detail.xhr.responseText); } catch (e) { body = {}; }
    const ok = event.detail.successful;
    toast(body.message || body.error || (ok ? "Done" : "Failed (" + event.detail.xhr.status + ")"), !ok);
    htmx.trigger(document.body, "live");
  });

  const charts = {};
  let drawing = false;
  let span = [0, 1];  // the time window every chart shows, from the task series

  function chart(id, series, data) {
    const el = document.getElementById(id);
    if (!el) return;
    const width = el.clientWidth || 300;
    if (charts[id] && charts[id].series.length === series.length + 1) {
      charts[id].setData(data);
      if (Math.abs(charts[id].width - width) > 4) charts[id].setSize({ width: width, height: 180 });
      return;
    }
    if (charts[id]) charts[id].destroy();
    el.textContent = "";
    charts[id] = new uPlot({ width: width, height: 180, series: [{}].concat(series),
      scales: { x: { time: true, range: () => span } }, axes: [{}, { size: 50 }], legend: { live: false } }, data, el);
  }

  const palette = ["#2f855a", "#c53030", "#2b6cb0", "#b7791f", "#6b46c1", "#319795"];

  async function drawCharts() {
    if (drawing || !document.getElementById("chart-throughput") || typeof uPlot === "undefined") return;
    drawing = true;
    try {
      const data = await (await fetch(prefix + "/api/charts", { headers: { Accept: "application/json" } })).json();
      const t = data.tasks;
      span = [t.x[0], t.x[t.x.length - 1]];
      chart("chart-throughput", [{ label: "finished", stroke: palette[0], fill: "rgba(47,133,90,.12)" }], [t.x, t.succeeded.map((v, i) => v + t.failed[i])]);
      chart("chart-failures", [{ label: "failed", stroke: palette[1], fill: "rgba(197,48,48,.12)" }], [t.x, t.failed]);
      chart("chart-runtime", ["p50", "p95", "p99"].map((p, i) => ({ label: p, stroke: palette[2 + i], spanGaps: true, points: { show: true, size: 4 } })), [t.x, t.p50, t.p95, t.p99]);
      const q = data.queues;
      const names = Object.keys(q.queues);
      if (q.x.length) chart("chart-queues", names.map((n, i) => ({ label: n, stroke: palette[i % palette.length], points: { show: true, size: 4 } })), [q.x].concat(names.map((n) => q.queues[n])));
    } catch (e) {
      // the next tick tries again
    } finally {
      drawing = false;
    }
  }

  connect();
  drawCharts();
  window.addEventListener("resize", () => { Object.keys(charts).forEach((k) => charts[k].destroy()); Object.keys(charts).forEach((k) => delete charts[k]); drawCharts(); });
})();
