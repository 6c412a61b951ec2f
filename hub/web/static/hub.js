/*
 * The dashboard's script: draws the charts a page describes in JSON and keeps
 * live sections current. Chart.js (vendor/chart.umd.min.js) is loaded first.
 *
 * A chart is a <canvas data-chart="ID"> with its specification in
 * <script type="application/json" id="spec-ID">; see hub/web/pages/charts.py
 * for the format. A live section is an element with data-live-url and
 * data-live-interval (seconds); its content is replaced by the HTML that URL
 * returns. When every chart is drawn, <body> gets data-charts-ready="true".
 */
(function () {
  "use strict";

  var PALETTE = ["#1d4ed8", "#15803d", "#b91c1c", "#7c3aed", "#c2410c", "#0e7490", "#4b5563"];

  function formatHours(value) {
    if (value * 60 < 59.5) { return (value * 60).toFixed(0) + " min"; }
    if (value < 48) { return value.toFixed(1) + " h"; }
    return (value / 24).toFixed(1) + " d";
  }

  function formatValue(value, unit) {
    if (value === null || value === undefined) { return "\u2014"; }
    if (unit === "hours") { return formatHours(value); }
    if (unit === "ratio") { return (value * 100).toFixed(1) + "%"; }
    if (unit === "count") { return Math.round(value).toLocaleString("en-US"); }
    return String(value);
  }

  function formatTick(value, unit) {
    if (unit === "ratio") { return Math.round(value * 100) + "%"; }
    if (unit === "hours") {
      if (value === 0) { return "0"; }
      if (value < 1) { return Math.round(value * 60) + " min"; }
      return value >= 48 ? Math.round(value / 24) + " d" : Math.round(value) + " h";
    }
    return Number.isInteger(value) ? value.toLocaleString("en-US") : "";
  }

  /* Return where a duration falls on a histogram's category axis: the bin index
     plus the fraction of the bin below it, on a log scale inside doubling bins. */
  function binPosition(value, edges) {
    var index = 0;
    while (index + 1 < edges.length && value >= edges[index + 1]) { index += 1; }
    if (index + 1 >= edges.length) { return index + 0.5; }
    var lower = edges[index];
    var upper = edges[index + 1];
    if (lower <= 0) { return index + Math.max(value, 0) / upper; }
    return index + Math.log(value / lower) / Math.log(upper / lower);
  }

  /* Draws the p50 and p90 lines of a histogram. */
  var markerPlugin = {
    id: "hubMarkers",
    afterDatasetsDraw: function (chart, args, options) {
      var markers = options.markers || [];
      var edges = options.edges || [];
      if (!markers.length || !edges.length) { return; }
      var x = chart.scales.x;
      var area = chart.chartArea;
      var step = edges.length > 1 ? x.getPixelForValue(1) - x.getPixelForValue(0) : 0;
      var context = chart.ctx;
      markers.forEach(function (marker, index) {
        var position = binPosition(marker.value, edges);
        var pixel = x.getPixelForValue(0) + (position - 0.5) * step;
        context.save();
        context.strokeStyle = index === 0 ? "#111827" : "#b91c1c";
        context.setLineDash(index === 0 ? [] : [5, 4]);
        context.lineWidth = 2;
        context.beginPath();
        context.moveTo(pixel, area.top);
        context.lineTo(pixel, area.bottom);
        context.stroke();
        context.fillStyle = context.strokeStyle;
        context.font = "12px system-ui, sans-serif";
        context.textAlign = pixel > (area.left + area.right) / 2 ? "right" : "left";
        var text = marker.label + " " + formatHours(marker.value);
        context.fillText(text, pixel + (context.textAlign === "left" ? 4 : -4), area.top + 12 + index * 14);
        context.restore();
      });
    }
  };

  function datasetFor(series, index, spec) {
    var colour = PALETTE[index % PALETTE.length];
    var isBar = series.style === "bar";
    var fill = colour;
    if (isBar) {
      // Translucent bars, so that lines drawn over them stay visible.
      fill = colour + (spec.type === "histogram" ? "cc" : "99");
    }
    return {
      type: isBar ? "bar" : "line",
      label: series.label,
      data: series.data,
      yAxisID: series.axis,
      borderColor: colour,
      backgroundColor: fill,
      borderWidth: isBar ? 0 : 2,
      pointRadius: isBar ? 0 : 2.5,
      spanGaps: false,
      order: isBar ? 2 : 1,
      hubKey: series.key,
      hubUnit: series.unit
    };
  }

  /* Steps for a duration axis, in hours, so that ticks fall on whole minutes, hours or days. */
  var HOUR_STEPS = [0.25, 0.5, 1, 2, 3, 6, 12, 24, 48, 72, 168, 336, 720, 1440, 2160, 4320, 8760];

  function hourStep(max) {
    for (var index = 0; index < HOUR_STEPS.length; index += 1) {
      if (max / HOUR_STEPS[index] <= 6) { return HOUR_STEPS[index]; }
    }
    return HOUR_STEPS[HOUR_STEPS.length - 1];
  }

  function axisFor(unit, position, showGrid) {
    var axis = {
      position: position,
      beginAtZero: true,
      grid: { display: showGrid },
      ticks: { callback: function (value) { return formatTick(value, unit); } }
    };
    if (unit === "hours") {
      axis.afterDataLimits = function (scale) {
        var step = hourStep(scale.max);
        scale.min = 0;
        scale.max = Math.max(step, Math.ceil(scale.max / step) * step);
      };
      axis.afterBuildTicks = function (scale) {
        var step = hourStep(scale.max);
        var ticks = [];
        for (var value = 0; value <= scale.max + 1e-9; value += step) { ticks.push({ value: value }); }
        scale.ticks = ticks;
      };
    }
    return axis;
  }

  function buildChart(canvas) {
    var id = canvas.getAttribute("data-chart");
    var source = document.getElementById("spec-" + id);
    if (!source) { return null; }
    var spec = JSON.parse(source.textContent);

    var scales = { x: { grid: { display: false }, ticks: { maxRotation: 60, autoSkip: true } } };
    scales.y = axisFor(spec.unit, "left", true);
    var rightUnits = spec.series.filter(function (s) { return s.axis === "y2"; }).map(function (s) { return s.unit; });
    if (rightUnits.length) { scales.y2 = axisFor(rightUnits[0], "right", false); }
    if (spec.type === "histogram") {
      scales.x.ticks.maxRotation = 45;
      scales.y.title = { display: true, text: "tickets" };
    }

    var config = {
      type: spec.type === "histogram" ? "bar" : "line",
      data: {
        labels: spec.labels,
        datasets: spec.series.map(function (series, index) { return datasetFor(series, index, spec); })
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        scales: scales,
        plugins: {
          legend: { display: spec.series.length > 1, position: "bottom", labels: { boxWidth: 12 } },
          tooltip: {
            callbacks: {
              label: function (item) {
                return item.dataset.label + ": " + formatValue(item.raw, item.dataset.hubUnit);
              }
            }
          },
          hubMarkers: { markers: spec.markers || [], edges: spec.edges || [] }
        }
      },
      plugins: [markerPlugin]
    };
    if (spec.type === "histogram") {
      config.options.datasets = { bar: { categoryPercentage: 1.0, barPercentage: 0.96 } };
    }
    return new window.Chart(canvas, config);
  }

  function drawCharts() {
    if (typeof window.Chart === "undefined") { return; }
    document.querySelectorAll("canvas[data-chart]").forEach(buildChart);
    document.body.setAttribute("data-charts-ready", "true");
  }

  function timeOfDay() {
    return new Date().toISOString().slice(11, 19) + " UTC";
  }

  function startLive(section) {
    var url = section.getAttribute("data-live-url");
    var seconds = parseFloat(section.getAttribute("data-live-interval")) || 15;
    var status = document.querySelector("[data-live-status]");
    var refreshes = 0;

    function schedule() { window.setTimeout(refresh, seconds * 1000); }

    function refresh() {
      window.fetch(url, {
        credentials: "same-origin",
        cache: "no-store",
        headers: { "X-Requested-With": "fetch", "Accept": "text/html" }
      }).then(function (response) {
        if (response.status === 401) {
          window.location.assign("/signin?next=" + encodeURIComponent(window.location.pathname));
          return null;
        }
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      }).then(function (html) {
        if (html === null) { return; }
        section.innerHTML = html;
        refreshes += 1;
        section.setAttribute("data-refresh-count", String(refreshes));
        if (status) { status.textContent = "Updated " + timeOfDay() + ", every " + seconds + " s"; }
        schedule();
      }).catch(function (error) {
        if (status) { status.textContent = "Update failed (" + error.message + "); retrying in " + seconds + " s"; }
        schedule();
      });
    }

    schedule();
  }

  function autoSubmit() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts();
    autoSubmit();
    document.querySelectorAll("[data-live-url]").forEach(startLive);
  });

  window.hubDashboard = { formatValue: formatValue, binPosition: binPosition };
}());
