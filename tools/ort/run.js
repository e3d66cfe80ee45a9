#!/usr/bin/env node
// Runs a model once with ONNX Runtime (CPU) on .npy inputs and writes every output as DIR/<name>.npy.
'use strict';

const fs = require('fs');
const path = require('path');
const {die, loadOrt, parseArgs, positiveInt, readNpy, writeNpy} = require('./common');

const USAGE = `usage: node tools/ort/run.js MODEL --input NAME=FILE.npy [--input ...] --output DIR
                              [--threads T] [--optimization disabled|basic|extended|all]

Mirrors 'qforge run': every model input must be given once; every output is written
to DIR/<output name>.npy (characters other than [A-Za-z0-9._-] in the name become '_').
Graph optimizations default to 'all'; use --optimization disabled for an oracle that
evaluates the graph as written.

example: node tools/ort/run.js models/fmnist_cnn.onnx --input input=/tmp/x.npy --output /tmp/ort_out
`;

async function main() {
  const args = parseArgs(process.argv.slice(2), {
    input: 'list', output: 'value', threads: 'value', optimization: 'value',
  }, USAGE);
  if (args.positional.length !== 1) die(`expected exactly one MODEL (see --help)`);
  const model = args.positional[0];
  const o = args.options;
  if (!o.output) die('--output DIR is required');
  const threads = positiveInt('threads', o.threads ?? 1);
  const level = o.optimization ?? 'all';
  if (!['disabled', 'basic', 'extended', 'all'].includes(level)) die(`--optimization: unknown level '${level}'`);

  const ort = loadOrt();
  let session;
  try {
    session = await ort.InferenceSession.create(model, {
      executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1,
      graphOptimizationLevel: level,
    });
  } catch (e) {
    die(`cannot load model ${model}: ${e.message.split('\n')[0]}`);
  }

  const feeds = {};
  for (const spec of o.input || []) {
    const eq = spec.indexOf('=');
    if (eq <= 0) die(`--input expects NAME=FILE.npy, got '${spec}'`);
    const name = spec.slice(0, eq);
    if (!session.inputNames.includes(name)) {
      die(`model has no input '${name}' (inputs: ${session.inputNames.join(', ')})`);
    }
    if (name in feeds) die(`input '${name}' given twice`);
    const t = readNpy(spec.slice(eq + 1));
    feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
  }
  const missing = session.inputNames.filter((n) => !(n in feeds));
  if (missing.length) die(`missing --input for: ${missing.join(', ')}`);

  let results;
  try {
    results = await session.run(feeds);
  } catch (e) {
    die(`${model}: inference failed: ${e.message.split('\n')[0]}`);
  }
  try {
    fs.mkdirSync(o.output, {recursive: true});
  } catch (e) {
    die(`cannot create ${o.output}: ${e.code || e.message}`);
  }
  for (const name of session.outputNames) {
    const t = results[name];
    const file = path.join(o.output, name.replace(/[^A-Za-z0-9._-]/g, '_') + '.npy');
    let data = t.data;
    if (t.type === 'bool') data = Uint8Array.from(data, (v) => (v ? 1 : 0));
    const tmp = `${file}.tmp${process.pid}`;  // write-then-rename: never a partial file
    writeNpy(tmp, t.type, t.dims, data);
    fs.renameSync(tmp, file);
    process.stdout.write(`${name}: ${t.type} [${t.dims.join(', ')}] -> ${file}\n`);
  }
  await session.release();
}

main().catch((e) => die(e.message.split('\n')[0]));
