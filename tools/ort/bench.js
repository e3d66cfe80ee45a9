#!/usr/bin/env node
// ONNX Runtime (CPU) latency of one model, reported with the same statistics as `qforge bench`.
'use strict';

const {die, loadOrt, parseArgs, positiveInt, latencyStats} = require('./common');

const USAGE = `usage: node tools/ort/bench.js MODEL [--batch B] [--threads T] [--warmup N]
                                 [--runs N | --min-time S] [--shape NAME=DxDx... ...]
                                 [--seed S] [--json]

ONNX Runtime's counterpart of 'qforge bench' (same options, statistics and JSON fields):
times InferenceSession.run on random inputs with the CPU provider (intra-op threads T,
default 1; inter-op threads 1; sequential execution; all graph optimizations).
Inputs: floats uniform in [0, 1) (seeded, default seed 0), integers and bools 0. A symbolic
or unknown first dimension is set to B (default 1); any other needs --shape NAME=DxDx...
Runs: --warmup untimed runs (default 5), then exactly --runs N timed runs, or else at least
10 runs and at least --min-time seconds (default 1.0).

Statistics: median of the per-run times (mean of the two middle ones for an even count),
p90 = nearest rank (the ceil(0.9 n)-th smallest), min, max, mean, sample stddev;
items/s = batch / median. The time of one run is wall time around one awaited
session.run(), so it includes the JavaScript binding's small per-call overhead (a
setImmediate hop and copying the outputs into JavaScript arrays).

example: node tools/ort/bench.js models/fmnist_cnn.onnx --batch 32 --threads 1 --json
`;

// Deterministic uniform [0,1) generator (mulberry32), so runs are repeatable.
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TYPED = {
  float32: Float32Array, float64: Float64Array, int8: Int8Array, uint8: Uint8Array,
  int16: Int16Array, uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array,
  int64: BigInt64Array, uint64: BigUint64Array, bool: Uint8Array,
};

// Makes one random feed tensor for an input: --shape override, else the declared dims with a
// symbolic or unknown first dimension set to the batch (the rule of qforge bench).
function makeInput(ort, meta, batch, overrides, rand) {
  if (!meta.isTensor) die(`input '${meta.name}' is not a tensor; bench only feeds tensors`);
  const Ctor = TYPED[meta.type];
  if (!Ctor) die(`input '${meta.name}' has type ${meta.type}, which bench cannot generate`);
  const declared = `[${meta.shape.join(', ')}]`;
  let shape;
  if (meta.name in overrides) {
    shape = overrides[meta.name];
    const fits = meta.shape.length === 0 || (shape.length === meta.shape.length &&
        shape.every((d, i) => typeof meta.shape[i] !== 'number' || meta.shape[i] < 0 || meta.shape[i] === d));
    if (!fits) die(`--shape ${meta.name}=${shape.join('x')} does not fit the model's input shape ${declared}`);
  } else {
    shape = meta.shape.map((d, i) => {
      if (typeof d === 'number' && d >= 0) return d;
      if (i === 0) return batch;
      die(`input '${meta.name}' dimension ${i} is symbolic or unknown (${declared}); ` +
          `give its size with --shape ${meta.name}=DxDx...`);
    });
  }
  const count = shape.reduce((a, b) => a * b, 1);
  const data = new Ctor(count);
  if (meta.type === 'float32' || meta.type === 'float64') {
    for (let i = 0; i < count; i++) data[i] = rand();
  }
  return new ort.Tensor(meta.type, data, shape);
}

async function main() {
  const args = parseArgs(process.argv.slice(2), {
    batch: 'value', threads: 'value', warmup: 'value', runs: 'value', 'min-time': 'value',
    shape: 'list', seed: 'value', json: 'flag',
  }, USAGE);
  if (args.positional.length !== 1) die(`expected exactly one MODEL (see --help)`);
  const model = args.positional[0];
  const o = args.options;
  const batch = positiveInt('batch', o.batch ?? 1);
  const threads = positiveInt('threads', o.threads ?? 1);
  const warmup = positiveInt('warmup', o.warmup ?? 5, {allowZero: true});
  if (o.runs !== undefined && o['min-time'] !== undefined) die('--runs and --min-time exclude each other');
  const runs = o.runs === undefined ? 0 : positiveInt('runs', o.runs);
  const minTime = Number(o['min-time'] ?? 1.0);
  if (!(minTime > 0)) die(`--min-time must be a positive number of seconds, got '${o['min-time']}'`);
  const seed = positiveInt('seed', o.seed ?? 0, {allowZero: true});
  const overrides = {};
  for (const spec of o.shape || []) {
    const m = /^([^=]+)=(\d+(?:x\d+)*)$/.exec(spec);
    if (!m) die(`--shape expects NAME=DxDx..., got '${spec}'`);
    overrides[m[1]] = m[2].split('x').map(Number);
  }

  const ort = loadOrt();
  let session;
  try {
    session = await ort.InferenceSession.create(model, {
      executionProviders: ['cpu'],
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
  } catch (e) {
    die(`cannot load model ${model}: ${e.message.split('\n')[0]}`);
  }
  for (const name of Object.keys(overrides)) {
    if (!session.inputNames.includes(name)) die(`--shape names unknown input '${name}'`);
  }

  const rand = mulberry32(seed);
  const feeds = {};
  const inputText = [];
  for (const meta of session.inputMetadata) {
    feeds[meta.name] = makeInput(ort, meta, batch, overrides, rand);
    inputText.push(`${meta.name} ${meta.type} [${feeds[meta.name].dims.join(', ')}]`);
  }
  // Items per run: the first input's leading dimension (the batch), as in qforge bench.
  const first = feeds[session.inputNames[0]];
  const items = first && first.dims.length ? first.dims[0] : 1;

  for (let i = 0; i < warmup; i++) await session.run(feeds);
  const times = [];
  const start = process.hrtime.bigint();
  const elapsed = () => Number(process.hrtime.bigint() - start) / 1e9;
  while (runs > 0 ? times.length < runs : (times.length < 10 || elapsed() < minTime)) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const total = elapsed();
  const s = latencyStats(times, items);
  const version = ort.env.versions.node || ort.env.versions.common;
  if (o.json) {
    const j = {
      engine: 'onnxruntime-node', engine_version: version, model, inputs: inputText, batch: items,
      threads, warmup, runs: times.length, seconds: total,
      latency_ms: {median: s.median_ms, p90: s.p90_ms, min: s.min_ms, mean: s.mean_ms,
                   max: s.max_ms, stddev: s.stddev_ms},
      items_per_second: s.throughput_per_s,
    };
    process.stdout.write(JSON.stringify(j, null, 2) + '\n');
  } else {
    const f = (x) => x.toFixed(3);
    const cols = ['median ms', 'p90 ms', 'min ms', 'mean ms', 'max ms', 'items/s'];
    const vals = [f(s.median_ms), f(s.p90_ms), f(s.min_ms), f(s.mean_ms), f(s.max_ms),
                  s.throughput_per_s.toFixed(1)];
    const w = cols.map((c, i) => Math.max(c.length, vals[i].length));
    process.stdout.write(
        `engine   onnxruntime-node ${version}\n` +
        `model    ${model}\n` +
        `inputs   ${inputText.join(', ')}\n` +
        `setup    batch ${items}, threads ${threads}, ${warmup} warm-up + ${times.length} timed runs ` +
        `in ${total.toFixed(2)} s\n\n` +
        cols.map((c, i) => c.padStart(w[i])).join('  ') + '\n' +
        '-'.repeat(w.reduce((a, b) => a + b, 0) + 2 * (w.length - 1)) + '\n' +
        vals.map((v, i) => v.padStart(w[i])).join('  ') + '\n');
  }
  await session.release();
}

main().catch((e) => die(e.message.split('\n')[0]));
