#!/usr/bin/env node
// Side-by-side fp32 latency: qforge bench and ONNX Runtime (bench.js) on the same models, same run.
'use strict';

const {spawnSync} = require('child_process');
const fs = require('fs');
const path = require('path');
const {die, parseArgs, positiveInt} = require('./common');

const USAGE = `usage: node tools/ort/compare.js --qforge BIN MODEL... [--batch B ...] [--threads T]
                                   [--rounds R] [--min-time S] [--json]

For each model and batch (default batches 1 and 32), runs 'BIN bench' and tools/ort/bench.js
alternately, R rounds (default 2), each a separate process with --warmup 3 and --min-time S
(default 1.0; at least 10 runs), and keeps each tool's lowest median over the rounds (the
least disturbed by other load on the machine). Prints one row per (model, batch) with both
medians and qforge / ORT (below 1 means qforge is faster).

example: node tools/ort/compare.js --qforge build/src/cli/qforge models/fmnist_cnn.onnx \\
           models/large/resnet18.onnx models/large/mobilenetv2.onnx --threads 1
`;

function runJson(cmd, args) {
  const r = spawnSync(cmd, args, {encoding: 'utf8', maxBuffer: 16 << 20});
  if (r.error) die(`cannot run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) die(`${cmd} ${args.join(' ')} failed: ${(r.stderr || '').trim().split('\n').pop()}`);
  try {
    return JSON.parse(r.stdout);
  } catch (e) {
    die(`${cmd} did not print JSON: ${r.stdout.slice(0, 200)}`);
  }
}

function main() {
  const args = parseArgs(process.argv.slice(2), {
    qforge: 'value', batch: 'list', threads: 'value', rounds: 'value', 'min-time': 'value', json: 'flag',
  }, USAGE);
  const o = args.options;
  if (!o.qforge) die('--qforge BIN is required (see --help)');
  if (!fs.existsSync(o.qforge)) die(`qforge binary ${o.qforge} not found; build it first (scripts/build.sh)`);
  if (args.positional.length === 0) die('give at least one MODEL (see --help)');
  const batches = (o.batch || ['1', '32']).map((b) => positiveInt('batch', b));
  const threads = positiveInt('threads', o.threads ?? 1);
  const rounds = positiveInt('rounds', o.rounds ?? 2);
  const minTime = String(o['min-time'] ?? '1.0');
  if (!(Number(minTime) > 0)) die(`--min-time must be a positive number, got '${minTime}'`);
  const bench = path.join(__dirname, 'bench.js');

  const rows = [];
  for (const model of args.positional) {
    if (!fs.existsSync(model)) die(`model ${model} not found`);
    for (const batch of batches) {
      const common = [model, '--batch', String(batch), '--threads', String(threads), '--warmup', '3',
                      '--min-time', minTime, '--json'];
      let q = null, r = null;
      for (let i = 0; i < rounds; i++) {
        const rj = runJson(process.execPath, [bench, ...common]);
        const qj = runJson(o.qforge, ['bench', ...common]);
        if (!r || rj.latency_ms.median < r.latency_ms.median) r = rj;
        if (!q || qj.latency_ms.median < q.latency_ms.median) q = qj;
      }
      rows.push({model: path.basename(model), batch, threads, isa: q.isa,
                 qforge_median_ms: q.latency_ms.median, qforge_p90_ms: q.latency_ms.p90,
                 ort_median_ms: r.latency_ms.median, ort_p90_ms: r.latency_ms.p90,
                 ratio: q.latency_ms.median / r.latency_ms.median, ort_version: r.engine_version});
      if (!o.json) process.stderr.write(`compare: ${path.basename(model)} batch ${batch} done\n`);
    }
  }
  if (o.json) {
    process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    return;
  }
  const head = ['model', 'batch', 'threads', 'isa', 'qforge median ms', 'ORT median ms', 'qforge/ORT'];
  const body = rows.map((x) => [x.model, String(x.batch), String(x.threads), x.isa,
                                x.qforge_median_ms.toFixed(3), x.ort_median_ms.toFixed(3), x.ratio.toFixed(2)]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  process.stdout.write(`ONNX Runtime ${rows[0].ort_version} (onnxruntime-node, CPU) vs qforge; ` +
                       `best median of ${rounds} rounds\n` + line(head) + '\n' +
                       '-'.repeat(w.reduce((a, b) => a + b, 0) + 2 * (w.length - 1)) + '\n' +
                       body.map(line).join('\n') + '\n');
}

main();
