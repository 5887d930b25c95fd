// The server's own dashboard: the panels of deploy/grafana/dashboards/mediaserver.json, drawn
// from this server's /metrics without Prometheus or Grafana. No build step, nothing fetched
// from outside the server.
//
// Theory of operation: the page loads the Grafana dashboard JSON (served at
// /dashboard/grafana.json, the same file Grafana provisions), so its panel list, titles, units
// and PromQL queries are the single source of both dashboards. Every few seconds it scrapes
// /metrics (Prometheus text format) and keeps the scrapes it has seen (the page's own short
// time series database). Each panel query is parsed by a small PromQL subset (selectors with
// label matchers, rate, increase, histogram_quantile, sum/max/min/avg/count by, + - * / with
// numbers or one-to-one vectors) and evaluated at each new scrape:
//   * `[$__rate_interval]` is the last RATE_WINDOW_S seconds of polls (at least the previous
//     poll, as with Prometheus's 1m at a 15 s scrape): rates and quantiles come from the
//     counter and bucket deltas between polls (counter resets handled as Prometheus does, no
//     extrapolation to the window edges, a series born between polls counted from zero);
//   * `[$__range]` is the life of the server process: counters start at zero with it, so the
//     increase over the range is the cumulative value, and quantiles over the range use the
//     cumulative buckets (the divisor of `rate` over it is the time the page has watched; it
//     only ever appears inside histogram_quantile, where it cancels);
//   * `$instance` matches every instance (one server, no `instance` label on a direct scrape).
// Heatmap panels show the bucket counts over the range (cumulative, de-accumulated per bucket).
// A query outside the subset shows its parse error in its panel instead of a number.
//
// The pure core (parser, evaluator, `Dashboard`) is exported for node so the unit tests run it
// against real /metrics output (tests/unit/test_dashboard_panels.py); the page part below runs
// only in a browser.

(function (root, factory) {
  const core = factory();
  if (typeof module === "object" && module.exports) module.exports = core;
  else root.msDashboardCore = core;
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  const RATE_WINDOW_S = 60; // $__rate_interval: a turn's latency stays on the chart for a minute
  const MAX_SCRAPES = 720; // an hour at the default 5 s poll
  const ANY_INSTANCE = ".*"; // the Grafana variable's allValue

  // ---- Prometheus text exposition ------------------------------------------------------------

  function parseValue(text) {
    if (text === "+Inf" || text === "Inf") return Infinity;
    if (text === "-Inf") return -Infinity;
    if (text === "NaN") return NaN;
    return Number(text);
  }

  // -> [{name, labels: {k: v}, value}]; comments and blank lines skipped.
  function parseExposition(text) {
    const samples = [];
    for (const raw of text.split("\n")) {
      const line = raw.trim();
      if (!line || line.startsWith("#")) continue;
      let i = 0;
      while (i < line.length && /[a-zA-Z0-9_:]/.test(line[i])) i++;
      const name = line.slice(0, i);
      const labels = {};
      if (line[i] === "{") {
        i++;
        for (;;) {
          while (line[i] === " " || line[i] === ",") i++;
          if (line[i] === "}") { i++; break; }
          const eq = line.indexOf("=", i);
          const key = line.slice(i, eq).trim();
          i = eq + 2; // past ="
          let value = "";
          while (i < line.length && line[i] !== '"') {
            if (line[i] === "\\") {
              i++;
              value += line[i] === "n" ? "\n" : line[i];
            } else value += line[i];
            i++;
          }
          i++; // closing quote
          labels[key] = value;
        }
      }
      const rest = line.slice(i).trim().split(/\s+/);
      samples.push({ name, labels, value: parseValue(rest[0]) });
    }
    return samples;
  }

  // ---- PromQL subset: tokens, then a recursive-descent parser to a small AST -----------------

  const AGGREGATIONS = new Set(["sum", "max", "min", "avg", "count"]);

  function tokenize(expr) {
    const tokens = [];
    const re = /\s*(?:(\$__[a-z_]+|[a-zA-Z_:][a-zA-Z0-9_:]*)|(\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|("(?:[^"\\]|\\.)*")|(=~|!~|!=|[=(){}\[\],*\/+-]))\s*/y;
    while (re.lastIndex < expr.length) {
      const at = re.lastIndex;
      const match = re.exec(expr);
      if (match === null) throw new Error(`cannot read the query at "${expr.slice(at, at + 20)}"`);
      if (match[1] !== undefined) tokens.push({ kind: "word", text: match[1] });
      else if (match[2] !== undefined) tokens.push({ kind: "number", text: match[2] });
      else if (match[3] !== undefined) tokens.push({ kind: "string", text: JSON.parse(match[3]) });
      else tokens.push({ kind: "op", text: match[4] });
    }
    return tokens;
  }

  function parseQuery(expr) {
    const tokens = tokenize(expr.replace(/\$instance\b/g, ANY_INSTANCE));
    let pos = 0;
    const peek = () => tokens[pos] || { kind: "end", text: "" };
    const next = () => tokens[pos++] || { kind: "end", text: "" };
    const expect = (text) => {
      const token = next();
      if (token.text !== text) throw new Error(`expected "${text}", found "${token.text || "end"}"`);
      return token;
    };
    const labelList = () => {
      expect("(");
      const names = [];
      while (peek().text !== ")") {
        names.push(next().text);
        if (peek().text === ",") next();
      }
      expect(")");
      return names;
    };

    function additive() {
      let left = multiplicative();
      while (peek().text === "+" || peek().text === "-") {
        const op = next().text;
        left = { type: "binary", op, left, right: multiplicative() };
      }
      return left;
    }
    function multiplicative() {
      let left = primary();
      while (peek().text === "*" || peek().text === "/") {
        const op = next().text;
        left = { type: "binary", op, left, right: primary() };
      }
      return left;
    }
    function primary() {
      const token = next();
      if (token.kind === "number") return { type: "number", value: Number(token.text) };
      if (token.text === "(") {
        const inner = additive();
        expect(")");
        return inner;
      }
      if (token.kind !== "word") throw new Error(`unexpected "${token.text || "end"}"`);
      if (AGGREGATIONS.has(token.text)) {
        let by = null;
        if (peek().text === "by") { next(); by = labelList(); }
        expect("(");
        const inner = additive();
        expect(")");
        if (peek().text === "by") { next(); by = labelList(); }
        return { type: "aggregate", op: token.text, by, inner };
      }
      if (token.text === "rate" || token.text === "increase") {
        expect("(");
        const inner = selector(next());
        expect(")");
        if (!inner.range) throw new Error(`${token.text}() needs a range selector`);
        return { type: "counter", fn: token.text, selector: inner };
      }
      if (token.text === "histogram_quantile") {
        expect("(");
        const q = next();
        if (q.kind !== "number") throw new Error("histogram_quantile needs a number first");
        expect(",");
        const inner = additive();
        expect(")");
        return { type: "quantile", q: Number(q.text), inner };
      }
      if (peek().text === "(") throw new Error(`function ${token.text}() is not supported here`);
      const sel = selector(token);
      if (sel.range) throw new Error("a range selector outside rate() or increase()");
      return sel;
    }
    function selector(nameToken) {
      if (nameToken.kind !== "word") throw new Error(`expected a metric name, found "${nameToken.text}"`);
      const matchers = [];
      if (peek().text === "{") {
        next();
        while (peek().text !== "}") {
          const label = next().text;
          const op = next().text;
          const value = next();
          if (!["=", "!=", "=~", "!~"].includes(op) || value.kind !== "string") throw new Error(`bad matcher on ${label}`);
          matchers.push({ label, op, value: value.text });
          if (peek().text === ",") next();
        }
        expect("}");
      }
      let range = null;
      if (peek().text === "[") {
        next();
        range = next().text;
        expect("]");
        if (range !== "$__rate_interval" && range !== "$__range") throw new Error(`range ${range} is not supported`);
      }
      return { type: "selector", name: nameToken.text, matchers, range };
    }

    const ast = additive();
    if (pos < tokens.length) throw new Error(`unexpected "${tokens[pos].text}" after the query`);
    return ast;
  }

  // Metric names a query reads (a histogram's _bucket/_sum/_count are named as written).
  function metricNames(ast, out = new Set()) {
    if (!ast) return out;
    if (ast.type === "selector") out.add(ast.name);
    for (const key of ["inner", "left", "right", "selector"]) if (ast[key]) metricNames(ast[key], out);
    return out;
  }

  // ---- evaluation over the held scrapes --------------------------------------------------------

  function labelKey(labels) {
    return Object.keys(labels).sort().map((k) => `${k}=${JSON.stringify(labels[k])}`).join(",");
  }

  function matches(sample, sel) {
    if (sample.name !== sel.name) return false;
    return sel.matchers.every(({ label, op, value }) => {
      const have = sample.labels[label] || "";
      if (op === "=") return have === value;
      if (op === "!=") return have !== value;
      const re = new RegExp(`^(?:${value})$`);
      return op === "=~" ? re.test(have) : !re.test(have);
    });
  }

  function instant(scrape, sel) {
    return scrape.samples.filter((s) => matches(s, sel)).map((s) => ({ labels: { ...s.labels }, value: s.value }));
  }

  // Sum of increases along a counter's values, a drop counted as a reset to zero (Prometheus).
  function counterIncrease(values) {
    let total = 0;
    for (let i = 1; i < values.length; i++) total += values[i] >= values[i - 1] ? values[i] - values[i - 1] : values[i];
    return total;
  }

  function evalCounter(node, scrapes, at) {
    const sel = node.selector;
    const now = instant(scrapes[at], sel);
    if (sel.range === "$__range") {
      // Since the process started: counters began at zero with it.
      const seconds = Math.max(scrapes[at].t - scrapes[0].t, 1e-9);
      return now.map((s) => ({ labels: s.labels, value: node.fn === "increase" ? s.value : s.value / seconds }));
    }
    let from = at;
    while (from > 0 && scrapes[at].t - scrapes[from - 1].t <= RATE_WINDOW_S) from--;
    if (from === at && at > 0) from = at - 1; // polls further apart than the window
    if (from === at) return []; // one scrape: no rate yet
    const seconds = scrapes[at].t - scrapes[from].t;
    const out = [];
    for (const s of now) {
      const key = labelKey(s.labels);
      const values = [];
      // A series absent from an earlier poll was born since at zero (a labelled child of this
      // process's registry): counting from zero keeps its first observations, which
      // Prometheus, seeing one sample, would leave out.
      for (let i = from; i <= at; i++) {
        const old = scrapes[i].samples.find((o) => matches(o, sel) && labelKey(o.labels) === key);
        values.push(old ? old.value : 0);
      }
      const increase = counterIncrease(values);
      out.push({ labels: s.labels, value: node.fn === "increase" ? increase : increase / seconds });
    }
    return out;
  }

  function groupBy(vector, keep) {
    const groups = new Map();
    for (const s of vector) {
      const labels = {};
      for (const k of keep(s.labels)) if (s.labels[k] !== undefined) labels[k] = s.labels[k];
      const key = labelKey(labels);
      if (!groups.has(key)) groups.set(key, { labels, values: [] });
      groups.get(key).values.push(s);
    }
    return [...groups.values()];
  }

  function aggregate(op, values) {
    if (op === "sum") return values.reduce((a, b) => a + b, 0);
    if (op === "max") return Math.max(...values);
    if (op === "min") return Math.min(...values);
    if (op === "count") return values.length;
    return values.reduce((a, b) => a + b, 0) / values.length; // avg
  }

  // Prometheus's histogram_quantile: linear interpolation inside the bucket holding the rank;
  // the +Inf bucket answers with the highest finite bound; no observations -> NaN.
  function bucketQuantile(q, buckets) {
    buckets.sort((a, b) => a.le - b.le);
    if (buckets.length < 2 || buckets[buckets.length - 1].le !== Infinity) return NaN;
    const total = buckets[buckets.length - 1].count;
    if (!(total > 0)) return NaN;
    if (q < 0) return -Infinity;
    if (q > 1) return Infinity;
    const rank = q * total;
    let i = buckets.findIndex((b) => b.count >= rank);
    if (i === buckets.length - 1) return buckets[buckets.length - 2].le;
    if (i === 0 && buckets[0].le <= 0) return buckets[0].le;
    const lower = i === 0 ? 0 : buckets[i - 1].le;
    const below = i === 0 ? 0 : buckets[i - 1].count;
    return lower + (buckets[i].le - lower) * ((rank - below) / (buckets[i].count - below));
  }

  function binary(op, a, b) {
    if (op === "+") return a + b;
    if (op === "-") return a - b;
    if (op === "*") return a * b;
    return a / b; // Prometheus: x/0 is ±Inf or NaN, as in JS
  }

  // -> a number (scalar) or a vector [{labels, value}].
  function evaluate(node, scrapes, at) {
    switch (node.type) {
      case "number":
        return node.value;
      case "selector":
        return instant(scrapes[at], node);
      case "counter":
        return evalCounter(node, scrapes, at);
      case "aggregate": {
        const vector = evaluate(node.inner, scrapes, at);
        if (typeof vector === "number") throw new Error(`${node.op}() of a number`);
        const keep = node.by ? () => node.by : () => [];
        return groupBy(vector, keep).map((g) => ({ labels: g.labels, value: aggregate(node.op, g.values.map((s) => s.value)) }));
      }
      case "quantile": {
        const vector = evaluate(node.inner, scrapes, at);
        if (typeof vector === "number") throw new Error("histogram_quantile() of a number");
        const groups = groupBy(vector, (labels) => Object.keys(labels).filter((k) => k !== "le"));
        return groups.map((g) => ({
          labels: g.labels,
          value: bucketQuantile(node.q, g.values.map((s) => ({ le: parseValue(s.labels.le), count: s.value }))),
        }));
      }
      case "binary": {
        const left = evaluate(node.left, scrapes, at);
        const right = evaluate(node.right, scrapes, at);
        if (typeof left === "number" && typeof right === "number") return binary(node.op, left, right);
        if (typeof right === "number") return left.map((s) => ({ labels: s.labels, value: binary(node.op, s.value, right) }));
        if (typeof left === "number") return right.map((s) => ({ labels: s.labels, value: binary(node.op, left, s.value) }));
        const byKey = new Map(right.map((s) => [labelKey(s.labels), s.value]));
        return left.filter((s) => byKey.has(labelKey(s.labels))).map((s) => ({
          labels: s.labels,
          value: binary(node.op, s.value, byKey.get(labelKey(s.labels))),
        }));
      }
      default:
        throw new Error(`cannot evaluate ${node.type}`);
    }
  }

  function legendText(format, labels, refId) {
    if (!format) return labelKey(labels) || refId;
    return format.replace(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g, (_, k) => labels[k] ?? "");
  }

  // ---- the dashboard: panels from the Grafana JSON, series from the scrapes --------------------

  // Grafana panels (rows flattened, each panel told its row) -> the page's panels.
  function panelsFromDashboard(dashboard) {
    const panels = [];
    let row = "";
    const visit = (list) => {
      for (const panel of list || []) {
        if (panel.type === "row") {
          row = panel.title || "";
          visit(panel.panels);
          continue;
        }
        const defaults = (panel.fieldConfig && panel.fieldConfig.defaults) || {};
        panels.push({
          id: panel.id,
          title: panel.title || "",
          type: panel.type,
          row,
          description: panel.description || "",
          unit: defaults.unit || "short",
          thresholds: (defaults.thresholds && defaults.thresholds.steps) || [],
          width: (panel.gridPos && panel.gridPos.w) || 8,
          targets: (panel.targets || []).map((t) => {
            // A heatmap counts observations per bucket over the whole range (see the header).
            const expr = panel.type === "heatmap" ? t.expr.replace(/\$__rate_interval/g, "$__range") : t.expr;
            const target = { refId: t.refId, expr: t.expr, legendFormat: t.legendFormat || "", ast: null, error: null };
            try {
              target.ast = parseQuery(expr);
            } catch (err) {
              target.error = String(err.message || err);
            }
            return target;
          }),
          series: new Map(), // legend -> {legend, refId, labels, points: [[t, value]]}
        });
      }
    };
    visit(dashboard.panels);
    return panels;
  }

  class Dashboard {
    constructor(grafanaJson) {
      this.title = grafanaJson.title || "Dashboard";
      this.panels = panelsFromDashboard(grafanaJson);
      this.scrapes = []; // [{t: seconds, samples}]
      this.lastText = "";
    }

    // One /metrics scrape at `t` seconds: every panel query evaluated at it, one point per series.
    addScrape(t, text) {
      this.lastText = text;
      this.scrapes.push({ t, samples: parseExposition(text) });
      if (this.scrapes.length > MAX_SCRAPES) this.scrapes.shift();
      const at = this.scrapes.length - 1;
      for (const panel of this.panels) {
        for (const target of panel.targets) {
          if (!target.ast) continue;
          let result;
          try {
            result = evaluate(target.ast, this.scrapes, at);
          } catch (err) {
            target.error = String(err.message || err);
            continue;
          }
          const vector = typeof result === "number" ? [{ labels: {}, value: result }] : result;
          for (const s of vector) {
            const legend = legendText(target.legendFormat, s.labels, target.refId);
            const key = `${target.refId}\u0000${legend}`;
            if (!panel.series.has(key)) panel.series.set(key, { legend, refId: target.refId, labels: s.labels, points: [] });
            const series = panel.series.get(key);
            series.labels = s.labels;
            series.points.push([t, s.value]);
            if (series.points.length > MAX_SCRAPES) series.points.shift();
          }
        }
      }
    }

    // The latest value of every series: {panelId: {legend: value}}; a series missing from the
    // latest scrape's result is left out (its query has no data now).
    latest() {
      const t = this.scrapes.length ? this.scrapes[this.scrapes.length - 1].t : null;
      const out = {};
      for (const panel of this.panels) {
        out[panel.id] = {};
        for (const s of panel.series.values()) {
          const last = s.points[s.points.length - 1];
          if (last && last[0] === t) out[panel.id][s.legend] = last[1];
        }
      }
      return out;
    }
  }

  return { parseExposition, parseQuery, metricNames, evaluate, bucketQuantile, panelsFromDashboard, Dashboard, RATE_WINDOW_S };
});

// ---- the page ---------------------------------------------------------------------------------

(function () {
  "use strict";
  if (typeof document === "undefined" || !document.getElementById("panels")) return;
  const { Dashboard, RATE_WINDOW_S } = self.msDashboardCore;
  const params = new URLSearchParams(location.search);
  const everyS = Math.max(0.2, Number(params.get("every")) || 5);
  const COLORS = ["#2166d1", "#1f8a4c", "#b7791f", "#c53030", "#6b46c1", "#00838f", "#8d6e63"];
  const SVG = "http://www.w3.org/2000/svg";

  function formatValue(value, unit) {
    if (value === undefined || value === null || Number.isNaN(value)) return "–";
    if (!Number.isFinite(value)) return value > 0 ? "+∞" : "−∞";
    if (unit === "s") return value < 1 ? `${(value * 1000).toFixed(value < 0.01 ? 2 : 0)} ms` : `${value.toFixed(2)} s`;
    const text = Number.isInteger(value) ? String(value) : value.toFixed(Math.abs(value) < 10 ? 2 : 1);
    return unit === "cpm" ? `${text}/min` : text;
  }

  function thresholdColor(value, steps) {
    let color = "";
    for (const step of steps) if (step.value === null || value >= step.value) color = step.color;
    return { green: "var(--ok)", orange: "var(--warn)", red: "var(--bad)" }[color] || color;
  }

  function el(tag, attrs = {}, text = "") {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text) node.textContent = text;
    return node;
  }

  // A line chart of every series of a panel, on a shared y scale from zero.
  function sparkline(seriesList, width, height) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("class", "spark");
    const all = seriesList.flatMap((s) => s.points).filter(([, v]) => Number.isFinite(v));
    if (!all.length) return svg;
    const t0 = Math.min(...all.map(([t]) => t));
    const t1 = Math.max(...all.map(([t]) => t), t0 + 1e-9);
    const top = Math.max(...all.map(([, v]) => v), 0) || 1;
    seriesList.forEach((s, i) => {
      const pts = s.points.filter(([, v]) => Number.isFinite(v));
      if (!pts.length) return;
      const xy = pts.map(([t, v]) => `${(((t - t0) / (t1 - t0)) * (width - 2) + 1).toFixed(1)},${(height - 2 - (v / top) * (height - 4)).toFixed(1)}`);
      if (xy.length === 1) xy.push(xy[0].replace(/^[\d.]+/, String(width - 1)));
      const line = document.createElementNS(SVG, "polyline");
      line.setAttribute("points", xy.join(" "));
      line.setAttribute("stroke", COLORS[i % COLORS.length]);
      svg.appendChild(line);
    });
    return svg;
  }

  // Bars per bucket: the latest cumulative bucket counts, de-accumulated.
  function bucketBars(series) {
    const buckets = series
      .map((s) => ({ le: Number(s.labels.le === "+Inf" ? Infinity : s.labels.le), label: s.legend, count: s.points[s.points.length - 1][1] }))
      .sort((a, b) => a.le - b.le)
      .map((b, i, all) => ({ ...b, n: b.count - (i ? all[i - 1].count : 0) }));
    const wrap = el("div", { class: "bars" });
    const top = Math.max(1, ...buckets.map((b) => b.n));
    for (const b of buckets) {
      const bar = el("div", { class: "bar", title: `≤ ${b.label} s: ${b.n}`, "data-le": b.label, "data-count": String(b.n) });
      bar.appendChild(el("span", { class: "fill", style: `height:${(b.n / top) * 100}%` }));
      bar.appendChild(el("span", { class: "le" }, b.label === "+Inf" ? "∞" : b.label));
      wrap.appendChild(bar);
    }
    return wrap;
  }

  function renderPanel(panel, card) {
    const body = card.querySelector(".body");
    body.replaceChildren();
    const errors = panel.targets.filter((t) => t.error);
    for (const t of errors) body.appendChild(el("p", { class: "error" }, `${t.refId}: ${t.error}`));
    const t = dashboard.scrapes.length ? dashboard.scrapes[dashboard.scrapes.length - 1].t : null;
    const series = [...panel.series.values()];
    const current = (s) => {
      const last = s.points[s.points.length - 1];
      return last && last[0] === t ? last[1] : undefined;
    };
    if (panel.type === "stat") {
      const s = series[0];
      const value = s ? current(s) : undefined;
      const big = el("div", { class: "stat", "data-series": s ? s.legend : "", "data-value": String(value ?? "") }, formatValue(value, panel.unit));
      const color = value !== undefined ? thresholdColor(value, panel.thresholds) : "";
      if (color) big.style.color = color;
      body.appendChild(big);
      if (s) body.appendChild(sparkline([s], 200, 36));
      return;
    }
    if (panel.type === "heatmap") {
      const live = series.filter((s) => current(s) !== undefined);
      body.appendChild(live.length ? bucketBars(live) : el("p", { class: "nodata" }, "no data"));
      return;
    }
    const finite = series.flatMap((s) => s.points.map(([, v]) => v)).filter(Number.isFinite);
    if (finite.length) body.appendChild(el("div", { class: "ymax" }, `max ${formatValue(Math.max(0, ...finite), panel.unit)}`));
    body.appendChild(sparkline(series, 400, 90));
    const legend = el("table", { class: "legend" });
    series.forEach((s, i) => {
      const value = current(s);
      const row = el("tr");
      const name = el("td", { class: "name" }, s.legend || "this server"); // {{instance}}: none on a direct scrape
      name.style.setProperty("--swatch", COLORS[i % COLORS.length]);
      row.appendChild(name);
      row.appendChild(el("td", { class: "num", "data-series": s.legend, "data-value": String(value ?? "") }, formatValue(value, panel.unit)));
      legend.appendChild(row);
    });
    if (!series.length && !errors.length) body.appendChild(el("p", { class: "nodata" }, "no data yet"));
    body.appendChild(legend);
  }

  function layout() {
    const root = document.getElementById("panels");
    root.replaceChildren();
    const cards = new Map();
    let row = null;
    let grid = null;
    for (const panel of dashboard.panels) {
      if (panel.row !== row || !grid) {
        row = panel.row;
        if (row) root.appendChild(el("h2", { class: "row" }, row));
        grid = el("div", { class: "grid" });
        root.appendChild(grid);
      }
      const card = el("section", { class: `panel ${panel.type}`, "data-panel-id": String(panel.id), "data-title": panel.title });
      card.style.gridColumn = `span ${panel.width}`;
      const head = el("h3", { title: panel.description }, panel.title);
      card.appendChild(head);
      card.appendChild(el("div", { class: "body" }));
      grid.appendChild(card);
      cards.set(panel.id, card);
    }
    return cards;
  }

  let dashboard = null;
  let cards = null;
  const status = document.getElementById("status");
  const state = { polls: 0, error: null, dashboard: null };
  self.msDashboard = state;

  async function poll() {
    try {
      const response = await fetch("/metrics", { cache: "no-store" });
      if (!response.ok) throw new Error(`/metrics answered ${response.status}`);
      const text = await response.text();
      dashboard.addScrape(performance.now() / 1000, text);
      for (const panel of dashboard.panels) renderPanel(panel, cards.get(panel.id));
      state.polls += 1;
      state.error = null;
      status.textContent = `live · ${new Date().toLocaleTimeString()}`;
      status.className = "pill live";
    } catch (err) {
      state.error = String(err.message || err);
      status.textContent = state.error;
      status.className = "pill failed";
    }
    setTimeout(poll, everyS * 1000);
  }

  async function start() {
    const response = await fetch("/dashboard/grafana.json", { cache: "no-store" });
    const json = await response.json();
    dashboard = state.dashboard = new Dashboard(json);
    document.getElementById("title").textContent = dashboard.title;
    document.title = `${dashboard.title} · dashboard`;
    document.getElementById("note").textContent =
      `Panels of deploy/grafana/dashboards/mediaserver.json, from /metrics every ${everyS} s. ` +
      `Range: since the server started. Rates and per-interval quantiles: the last ${RATE_WINDOW_S} s.`;
    cards = layout();
    poll();
  }

  start().catch((err) => {
    state.error = String(err.message || err);
    status.textContent = state.error;
    status.className = "pill failed";
  });
})();
