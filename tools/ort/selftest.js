#!/usr/bin/env node
// Self-test of the harness helpers (stats definitions, .npy and IDX I/O); needs no ONNX Runtime.
// Run: node tools/ort/selftest.js   (exit status 0 = all passed)
'use strict';

const assert = require('assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const zlib = require('zlib');
const {latencyStats, readNpy, writeNpy, readIdx} = require('./common');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-ort-selftest-'));
let failures = 0;
function test(name, fn) {
  try {
    fn();
    process.stdout.write(`ok   ${name}\n`);
  } catch (e) {
    failures++;
    process.stdout.write(`FAIL ${name}: ${e.message}\n`);
  }
}

test('stats: odd count median, nearest-rank p90', () => {
  const s = latencyStats([5, 1, 4, 2, 3], 2);  // sorted 1..5
  assert.strictEqual(s.median_ms, 3);
  assert.strictEqual(s.p90_ms, 5);  // ceil(4.5) - 1 = index 4
  assert.strictEqual(s.min_ms, 1);
  assert.strictEqual(s.max_ms, 5);
  assert.strictEqual(s.mean_ms, 3);
  assert.strictEqual(s.stddev_ms, Math.sqrt(2.5));  // sample variance of 1..5 is 10 / 4
  assert.strictEqual(s.throughput_per_s, 2 * 1000 / 3);
});

test('stats: even count median averages the middle pair; p90 of 10 and 20 samples', () => {
  const ten = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1];
  const s = latencyStats(ten, 1);
  assert.strictEqual(s.median_ms, 5.5);
  assert.strictEqual(s.p90_ms, 9);  // ceil(9) - 1 = index 8
  const twenty = Array.from({length: 20}, (_, i) => i + 1);
  assert.strictEqual(latencyStats(twenty, 1).p90_ms, 18);  // index 17
  assert.strictEqual(latencyStats([7], 1).p90_ms, 7);
  assert.strictEqual(latencyStats([7], 1).stddev_ms, 0);
});

test('npy: float32 round trip with a header a multiple of 64 bytes', () => {
  const file = path.join(tmp, 'a.npy');
  const data = Float32Array.from([1.5, -2, 3.25, 0, 1e-8, -7]);
  writeNpy(file, 'float32', [2, 3], data);
  const raw = fs.readFileSync(file);
  assert.strictEqual((10 + raw.readUInt16LE(8)) % 64, 0);
  assert.ok(raw.toString('latin1', 10, 70).includes("'shape': (2, 3)"));
  const back = readNpy(file);
  assert.strictEqual(back.type, 'float32');
  assert.deepStrictEqual(back.dims, [2, 3]);
  assert.deepStrictEqual(Array.from(back.data), Array.from(data));
});

test('npy: int64 vector and scalar shapes', () => {
  const file = path.join(tmp, 'b.npy');
  writeNpy(file, 'int64', [3], BigInt64Array.from([1n, -2n, 3n]));
  assert.ok(fs.readFileSync(file).toString('latin1').includes("'shape': (3,)"));
  const back = readNpy(file);
  assert.deepStrictEqual(back.dims, [3]);
  assert.deepStrictEqual(Array.from(back.data), [1n, -2n, 3n]);
  writeNpy(file, 'float32', [], Float32Array.from([4]));
  assert.deepStrictEqual(readNpy(file).dims, []);
});

test('idx: gzip file with header and payload checks', () => {
  const file = path.join(tmp, 'c-idx3-ubyte.gz');
  const header = Buffer.from([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3]);
  fs.writeFileSync(file, zlib.gzipSync(Buffer.concat([header, Buffer.from([0, 1, 2, 3, 4, 255, 6, 7, 8, 9, 10, 11])])));
  const idx = readIdx(file);
  assert.deepStrictEqual(idx.dims, [2, 2, 3]);
  assert.strictEqual(idx.data[5], 255);
  assert.strictEqual(idx.data.length, 12);
});

fs.rmSync(tmp, {recursive: true, force: true});
if (failures) {
  process.stdout.write(`${failures} failed\n`);
  process.exit(1);
}
process.stdout.write('all passed\n');
