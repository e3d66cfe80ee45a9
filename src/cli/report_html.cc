// The HTML report: one offline file with the data, Chart.js and the script that draws the page.
#include "cli/report_html.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "qforge/data/atomic_file.h"
#include "qforge/tensor/tensor.h"

namespace qforge::cli {
namespace {

constexpr const char* kDefaultChartJs = "/usr/share/javascript/chart.js/chart.min.js";

std::string ReadChartJs() {
  const std::string path = ChartJsPath();
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string js = ss.str();
  if (!in || js.find("Chart") == std::string::npos)
    throw Error("cannot read Chart.js from '" + path +
                "' (install Debian's libjs-chart.js, or point QFORGE_CHARTJS at chart.min.js)");
  // Inside <script>, "</" could end the element early; Chart.js has none, but be safe.
  for (size_t p = 0; (p = js.find("</", p)) != std::string::npos; p += 3) js.replace(p, 2, "<\\/");
  return js;
}

// JSON for a <script> element: "</" and "<!--" cannot appear in it.
std::string ScriptSafeJson(const nlohmann::json& j) {
  std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '<')
      out += "\\u003c";
    else
      out += c;
  }
  return out;
}

std::string HtmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

constexpr const char* kStyle = R"CSS(
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #222;
       background: #fff; max-width: 1320px; }
h1 { font-size: 22px; margin: 0 0 4px 0; }
h2 { font-size: 17px; margin: 28px 0 8px 0; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
p.meta, p.note { color: #555; font-size: 13px; margin: 4px 0; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; white-space: nowrap; }
th { background: #f4f4f4; } td.l, th.l { text-align: left; }
tr.na td { color: #999; }
.grid { display: flex; flex-wrap: wrap; gap: 12px; }
.hist { border: 1px solid #eee; padding: 4px; }
canvas { display: block; }
)CSS";

// The page's script: reads DATA, fills the tables and draws the charts with Chart.js.
constexpr const char* kScript = R"JS(
'use strict';
const charts = [];
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function fmt(v, d) { return (typeof v === 'number' && isFinite(v)) ? v.toFixed(d) : String(v); }
function table(parent, header, rows, leftCols) {
  const t = el('table');
  const tr = el('tr');
  header.forEach((h, i) => tr.appendChild(el('th', i < leftCols ? {class: 'l'} : {}, h)));
  t.appendChild(tr);
  for (const r of rows) {
    const row = el('tr', r.cls ? {class: r.cls} : {});
    r.cells.forEach((c, i) => row.appendChild(el('td', i < leftCols ? {class: 'l'} : {}, c)));
    t.appendChild(row);
  }
  parent.appendChild(t);
}
function canvas(parent, id, w, h) {
  const c = el('canvas', {id: id, width: w, height: h});
  parent.appendChild(c);
  return c;
}
function chart(c, config) {
  config.options = Object.assign({animation: false, responsive: false, devicePixelRatio: 1},
                                 config.options || {});
  charts.push([c, new Chart(c.getContext('2d'), config)]);
}
const palette = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2'];

function compareSection(root, cmp) {
  root.appendChild(el('h2', {}, 'Methods'));
  root.appendChild(el('p', {class: 'meta'},
      `${cmp.model} on ${cmp.data}; ISA ${cmp.isa}, ${cmp.all_threads} threads; latency median / p90 ms`));
  const nt = cmp.all_threads, bl = cmp.batch_large;
  const header = ['method', 'W bits', 'A bits', 'size', 'vs fp32', 'b1 1T', `b1 ${nt}T`,
                  `b${bl} 1T`, `b${bl} ${nt}T`, 'img/s', 'top-1 %', 'Δ pts', 'agree %',
                  'quantize s', 'scheme'];
  const rows = [];
  for (const m of cmp.methods) {
    if (!m.available) {
      rows.push({cls: 'na', cells: [m.method, '-', '-', '-', '-', '-', '-', '-', '-', '-', '-', '-',
                                    '-', '-', m.reason]});
      continue;
    }
    const lat = (m.latency || []).map(l => `${fmt(l.median_ms, 3)} / ${fmt(l.p90_ms, 3)}`);
    while (lat.length < 4) lat.push('-');
    rows.push({cells: [m.method, m.weight_bits, m.activation_bits,
                       (m.file_bytes / 1024).toFixed(1) + ' KiB', fmt(m.size_ratio, 3) + 'x',
                       ...lat, m.items_per_second ? fmt(m.items_per_second, 0) : '-',
                       fmt(100 * m.top1, 2), fmt(m.delta_points, 2), fmt(100 * m.agreement, 2),
                       fmt(m.quantize_seconds, 2), m.description]});
  }
  table(root, header, rows, 1);

  root.appendChild(el('h2', {}, 'Accuracy vs size vs latency'));
  root.appendChild(el('p', {class: 'note'},
      'x: model file size; y: top-1 accuracy; bubble area: batch-1 single-thread median latency ' +
      '(no latency measured: fixed size).'));
  const avail = cmp.methods.filter(m => m.available);
  const lat1 = m => (m.latency && m.latency.length) ? m.latency[0].median_ms : null;
  const maxLat = Math.max(1e-9, ...avail.map(m => lat1(m) || 0));
  const datasets = avail.map((m, i) => ({
    label: `${m.method}` + (lat1(m) !== null ? ` (${fmt(lat1(m), 3)} ms)` : ''),
    data: [{x: m.file_bytes / 1024, y: 100 * m.top1,
            r: lat1(m) !== null ? 6 + 24 * Math.sqrt(lat1(m) / maxLat) : 10}],
    backgroundColor: palette[i % palette.length] + 'aa', borderColor: palette[i % palette.length],
  }));
  chart(canvas(root, 'chart-tradeoff', 900, 380), {
    type: 'bubble', data: {datasets},
    options: {layout: {padding: 24}, clip: false,
              scales: {x: {title: {display: true, text: 'model file size (KiB)'}, beginAtZero: true,
                           grace: '10%'},
                       y: {title: {display: true, text: 'top-1 accuracy (%)'}, grace: '20%'}},
              plugins: {legend: {position: 'right'}}},
  });
}

function analysisSection(root, a) {
  root.appendChild(el('h2', {}, 'Summary'));
  const s = a.summary;
  table(root, ['model', 'images', 'fp32 top-1 %', 'static int8 top-1 %', 'Δ pts', 'budget pts',
               'recommended fp32 layers', 'top-1 % with them'],
        [{cells: [a.model, String(s.images), fmt(100 * s.fp32_top1, 2), fmt(100 * s.static_top1, 2),
                  fmt(100 * (s.static_top1 - s.fp32_top1), 2), fmt(s.budget, 2),
                  s.recommended.length ? s.recommended.join(', ') : '(none)',
                  fmt(100 * s.recommended_top1, 2)]}], 1);
  if (!s.within_budget)
    root.appendChild(el('p', {class: 'note'}, 'Excluding every layer did not reach the budget.'));

  root.appendChild(el('h2', {}, 'Sensitivity: top-1 accuracy drop when only that layer is quantized'));
  const sens = a.sensitivity;
  chart(canvas(root, 'chart-sensitivity', 900, Math.max(160, 28 * sens.length + 60)), {
    type: 'bar',
    data: {labels: sens.map(l => `${l.node} (${l.op})`),
           datasets: [{label: 'accuracy drop (points vs fp32)',
                       data: sens.map(l => Math.max(0, 100 * (s.fp32_top1 - l.top1))),
                       backgroundColor: sens.map((l, i) => i === 0 ? '#d62728' : '#1f77b4')}]},
    options: {indexAxis: 'y', scales: {x: {beginAtZero: true,
                                           title: {display: true, text: 'points'}}}},
  });
  table(root, ['layer', 'op', 'top-1 % (only this layer int8)', 'drop pts', 'agree %'],
        sens.map(l => ({cells: [l.node, l.op, fmt(100 * l.top1, 2),
                                fmt(100 * (s.fp32_top1 - l.top1), 2), fmt(100 * l.agreement, 2)]})), 2);
  root.appendChild(el('h3', {}, 'Greedy exclusion (verified by quantizing and measuring)'));
  table(root, ['step', 'kept in fp32', 'top-1 %', 'Δ pts'],
        a.steps.map((st, i) => ({cells: [String(i), st.excluded.join(', ') || '(none)',
                                         fmt(100 * st.top1, 2),
                                         fmt(100 * (st.top1 - s.fp32_top1), 2)]})), 2);

  root.appendChild(el('h2', {}, 'Per-tensor quantization error (SQNR, higher is better)'));
  const errs = a.errors;
  chart(canvas(root, 'chart-error', 900, Math.max(160, 22 * errs.length + 60)), {
    type: 'bar',
    data: {labels: errs.map(e => `${e.tensor} [${e.kind}]`),
           datasets: [{label: 'SQNR (dB)', data: errs.map(e => isFinite(e.sqnr_db) ? e.sqnr_db : 0),
                       backgroundColor: errs.map(e => e.kind === 'weight' ? '#2ca02c' : '#ff7f0e')}]},
    options: {indexAxis: 'y', scales: {x: {title: {display: true, text: 'SQNR dB'}}},
              plugins: {legend: {display: false}}},
  });
  table(root, ['tensor', 'kind', 'node', 'bias', 'std', 'SQNR dB', 'cosine'],
        errs.map(e => ({cells: [e.tensor, e.kind, e.node, Number(e.bias).toPrecision(3),
                                Number(e.std).toPrecision(3), fmt(e.sqnr_db, 1),
                                fmt(e.cosine, 5)]})), 3);

  root.appendChild(el('h2', {}, 'Activation histograms and the clipping range each observer chose'));
  root.appendChild(el('p', {class: 'note'},
      'Bars: value counts (log scale); blue bins lie inside the quantization range, red ones are ' +
      'clipped. Title: observer, range, data extremes and the share of values clipped.'));
  const grid = el('div', {class: 'grid'});
  root.appendChild(grid);
  a.histograms.forEach((h, i) => {
    const box = el('div', {class: 'hist'});
    grid.appendChild(box);
    const c = canvas(box, `hist-${i}`, 420, 220);
    const centers = h.counts.map((_, k) => h.lo + (k + 0.5) * h.width);
    chart(c, {
      type: 'bar',
      data: {labels: centers.map(x => x.toPrecision(3)),
             datasets: [{data: h.counts, barPercentage: 1.0, categoryPercentage: 1.0,
                         backgroundColor: centers.map(x => (x >= h.range_min && x <= h.range_max)
                                                               ? '#1f77b4' : '#d62728')}]},
      options: {plugins: {legend: {display: false},
                          title: {display: true, font: {size: 11},
                                  text: [h.tensor, `${h.observer}: [${fmt(h.range_min, 3)}, ` +
                                         `${fmt(h.range_max, 3)}] of [${fmt(h.min, 3)}, ` +
                                         `${fmt(h.max, 3)}], ${fmt(100 * h.clipped, 3)}% clipped`]}},
                scales: {y: {type: 'logarithmic'}, x: {ticks: {maxTicksLimit: 8}}}},
    });
  });
}

function main() {
  const root = document.getElementById('report');
  if (DATA.compare) compareSection(root, DATA.compare);
  if (DATA.analysis) analysisSection(root, DATA.analysis);
  // Mark what was drawn, for headless checks: a canvas counts only if some pixel is painted.
  let drawn = 0;
  for (const [c] of charts) {
    const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let painted = 0;
    for (let k = 3; k < px.length; k += 4) painted += px[k] !== 0;
    const r = c.getBoundingClientRect();
    c.dataset.rect = [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]
                         .map(Math.round).join(',');
    c.dataset.rendered = painted > 0 ? '1' : '0';
    drawn += painted > 0;
  }
  document.body.dataset.charts = String(drawn);
}
try { main(); } catch (e) {
  document.body.dataset.error = String(e);
  document.body.appendChild(el('pre', {}, 'report script failed: ' + e));
}
)JS";

}  // namespace

std::string ChartJsPath() {
  const char* env = std::getenv("QFORGE_CHARTJS");
  return env && *env ? std::string(env) : std::string(kDefaultChartJs);
}

void CheckHtmlReportAvailable() { ReadChartJs(); }

std::string RenderHtmlReport(const HtmlReport& report) {
  nlohmann::json data = {{"compare", report.compare}, {"analysis", report.analysis}};
  std::string html;
  html += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  html += "<title>" + HtmlEscape(report.title) + "</title>\n<style>" + kStyle + "</style>\n";
  html += "</head>\n<body>\n<h1>" + HtmlEscape(report.title) + "</h1>\n";
  html +=
      "<p class=\"meta\">Made by qforge; self-contained (charts by Chart.js, inlined). "
      "How it is measured: docs/report.md.</p>\n<div id=\"report\"></div>\n";
  html += "<script>\n" + ReadChartJs() + "\n</script>\n";
  html += "<script>\nconst DATA = " + ScriptSafeJson(data) + ";\n" + kScript + "</script>\n";
  html += "</body>\n</html>\n";
  return html;
}

void WriteHtmlReport(const HtmlReport& report, const std::string& path) {
  data::WriteFileAtomic(path, RenderHtmlReport(report));
}

}  // namespace qforge::cli
