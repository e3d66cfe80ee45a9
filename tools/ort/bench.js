#!/usr/bin/env node
// ONNX Runtime (CPU) latency of one model, reported with the same statistics as `qforge bench`.
'use strict';

const path = require('path');
const {die, loadOrt, parseArgs, positiveInt, latencyStats} = require('./common');

const USAGE = `usage: node tools/ort/bench.js MODEL [--batch B] [--threads T] [--warmup N] [--runs N]
                                 [--dim NAME=V ...] [--seed S] [--json]

Times InferenceSession.run on random inputs with ONNX Runtime's CPU provider
(intra-op threads T, inter-op threads 1, sequential execution, all graph optimizations).
Symbolic dimensions: the first dimension of every input is set to B (default 1); any
other symbolic dimension needs --dim NAME=V. Inputs are uniform in [0, 1) for float
types (seeded, default seed 0) and 0 for integer types.

Statistics (shared with qforge bench): median of the per-run times (mean of the two
middle ones for an even count), p90 = nearest rank sorted[ceil(0.9 n) - 1], min, max,
mean; throughput = B / median. The time of one run is wall time around one awaited
session.run(), so it includes the JavaScript binding's small per-call overhead.

example: node tools/ort/bench.js models/fmnist_cnn.onnx --batch 32 --threads 1 --runs 200 --json
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

// Makes one random feed tensor for an input from its metadata.
function makeInput(ort, meta, batch, dims, rand) {
  if (!meta.isTensor) die(`input '${meta.name}' is not a tensor; bench only feeds tensors`);
  const Ctor = TYPED[meta.type];
  if (!Ctor) die(`input '${meta.name}' has type ${meta.type}, which bench cannot generate`);
  const shape = meta.shape.map((d, i) => {
    if (typeof d === 'number' && d >= 0) return d;
    if (typeof d === 'string' && d in dims) return dims[d];
    if (i === 0) return batch;
    die(`input '${meta.name}' dimension ${i} is symbolic ('${d}'); set it with --dim ${d || 'NAME'}=V`);
  });
  const count = shape.reduce((a, b) => a * b, 1);
  const data = new Ctor(count);
  if (meta.type === 'float32' || meta.type === 'float64') {
    for (let i = 0; i < count; i++) data[i] = rand();
  }
  return new ort.Tensor(meta.type, data, shape);
}

async function main() {
  const args = parseArgs(process.argv.slice(2), {
    batch: 'value', threads: 'value', warmup: 'value', runs: 'value', dim: 'list', seed: 'value',
    json: 'flag',
  }, USAGE);
  if (args.positional.length !== 1) die(`expected exactly one MODEL (see --help)`);
  const model = args.positional[0];
  const o = args.options;
  const batch = positiveInt('batch', o.batch ?? 1);
  const threads = positiveInt('threads', o.threads ?? 1);
  const warmup = positiveInt('warmup', o.warmup ?? 10, {allowZero: true});
  const runs = positiveInt('runs', o.runs ?? 50);
  const seed = positiveInt('seed', o.seed ?? 0, {allowZero: true});
  const dims = {};
  for (const d of o.dim || []) {
    const m = /^([^=]+)=(\d+)$/.exec(d);
    if (!m) die(`--dim expects NAME=V, got '${d}'`);
    dims[m[1]] = positiveInt('dim', m[2]);
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

  const rand = mulberry32(seed);
  const feeds = {};
  for (const meta of session.inputMetadata) feeds[meta.name] = makeInput(ort, meta, batch, dims, rand);

  for (let i = 0; i < warmup; i++) await session.run(feeds);
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const stats = latencyStats(times, batch);
  const result = {
    engine: 'onnxruntime-node', engine_version: ort.env.versions.node || ort.env.versions.common,
    model: path.basename(model), batch, threads, warmup, ...stats,
  };
  if (o.json) {
    process.stdout.write(JSON.stringify(result) + '\n');
  } else {
    const f = (x) => x.toFixed(3);
    process.stdout.write(
        `onnxruntime ${result.engine_version}  ${result.model}  batch ${batch}  threads ${threads}\n` +
        `  median ${f(stats.median_ms)} ms  p90 ${f(stats.p90_ms)} ms  min ${f(stats.min_ms)} ms  ` +
        `mean ${f(stats.mean_ms)} ms  (${runs} runs, ${warmup} warm-up)\n` +
        `  throughput ${stats.throughput_per_s.toFixed(1)} /s\n`);
  }
  await session.release();
}

main().catch((e) => die(e.message.split('\n')[0]));
