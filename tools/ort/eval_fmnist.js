#!/usr/bin/env node
// ONNX Runtime (CPU) top-1 accuracy of a model on the Fashion-MNIST test set, with per-image predictions.
'use strict';

const fs = require('fs');
const path = require('path');
const {die, loadOrt, parseArgs, positiveInt, readIdx} = require('./common');

const DEFAULT_DATA = '/usr/share/datasets/fashion-mnist';
const USAGE = `usage: node tools/ort/eval_fmnist.js MODEL [--limit N] [--batch B] [--threads T]
                                      [--predictions FILE] [--data DIR] [--json]

Feeds the first N (default all 10000) Fashion-MNIST test images, as raw pixels scaled
to [0, 1] (byte / 255, float32, shape [B,1,28,28]), to the model's only input and takes
the argmax of its first output (first maximum wins on ties, like numpy.argmax).
Prints top-1 accuracy; --predictions writes one predicted class per line, in test-set
order, for comparison with 'qforge eval --predictions'.
Data: t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz in DIR (default ${DEFAULT_DATA}).

example: node tools/ort/eval_fmnist.js models/fmnist_cnn.onnx --predictions /tmp/ort_pred.txt
`;

async function main() {
  const args = parseArgs(process.argv.slice(2), {
    limit: 'value', batch: 'value', threads: 'value', predictions: 'value', data: 'value', json: 'flag',
  }, USAGE);
  if (args.positional.length !== 1) die(`expected exactly one MODEL (see --help)`);
  const model = args.positional[0];
  const o = args.options;
  const batch = positiveInt('batch', o.batch ?? 100);
  const threads = positiveInt('threads', o.threads ?? 1);
  const dataDir = o.data ?? DEFAULT_DATA;

  const images = readIdx(path.join(dataDir, 't10k-images-idx3-ubyte.gz'));
  const labels = readIdx(path.join(dataDir, 't10k-labels-idx1-ubyte.gz'));
  if (images.dims.length !== 3 || images.dims[1] !== 28 || images.dims[2] !== 28) {
    die(`test images have shape (${images.dims}), expected (N, 28, 28)`);
  }
  if (labels.dims.length !== 1 || labels.dims[0] !== images.dims[0]) {
    die(`test labels have shape (${labels.dims}), expected (${images.dims[0]})`);
  }
  const total = images.dims[0];
  const n = o.limit === undefined ? total : Math.min(positiveInt('limit', o.limit), total);

  const ort = loadOrt();
  let session;
  try {
    session = await ort.InferenceSession.create(model, {
      executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
    });
  } catch (e) {
    die(`cannot load model ${model}: ${e.message.split('\n')[0]}`);
  }
  if (session.inputNames.length !== 1) {
    die(`${model} has ${session.inputNames.length} inputs; Fashion-MNIST eval needs exactly one`);
  }
  const inputName = session.inputNames[0];
  const outputName = session.outputNames[0];

  const pixels = 28 * 28;
  const predictions = new Int32Array(n);
  let correct = 0;
  for (let start = 0; start < n; start += batch) {
    const b = Math.min(batch, n - start);
    const x = new Float32Array(b * pixels);
    for (let i = 0; i < b * pixels; i++) x[i] = images.data[start * pixels + i] / 255;
    let out;
    try {
      out = (await session.run({[inputName]: new ort.Tensor('float32', x, [b, 1, 28, 28])}))[outputName];
    } catch (e) {
      die(`${model}: inference failed: ${e.message.split('\n')[0]}`);
    }
    if (out.dims.length !== 2 || out.dims[0] !== b) {
      die(`${model}: output '${outputName}' has shape [${out.dims}], expected [${b}, classes]`);
    }
    const classes = out.dims[1];
    for (let i = 0; i < b; i++) {
      let best = 0;
      for (let c = 1; c < classes; c++) {
        if (out.data[i * classes + c] > out.data[i * classes + best]) best = c;
      }
      predictions[start + i] = best;
      if (best === labels.data[start + i]) correct++;
    }
  }
  await session.release();

  if (o.predictions) {
    const tmp = `${o.predictions}.tmp${process.pid}`;  // write-then-rename: never a partial file
    try {
      fs.writeFileSync(tmp, Array.from(predictions).join('\n') + '\n');
      fs.renameSync(tmp, o.predictions);
    } catch (e) {
      die(`cannot write ${o.predictions}: ${e.code || e.message}`);
    }
  }
  const result = {engine: 'onnxruntime-node', engine_version: ort.env.versions.node,
                  model: path.basename(model), images: n, correct, top1: correct / n};
  if (o.json) {
    process.stdout.write(JSON.stringify(result) + '\n');
  } else {
    process.stdout.write(`onnxruntime ${result.engine_version}  ${result.model}  Fashion-MNIST test: ` +
                         `top-1 ${(100 * result.top1).toFixed(2)}% (${correct}/${n})\n`);
  }
}

main().catch((e) => die(e.message.split('\n')[0]));
