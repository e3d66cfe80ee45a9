// Shared helpers for the ONNX Runtime harness: argument parsing, .npy and IDX I/O, latency stats.
'use strict';

const fs = require('fs');
const zlib = require('zlib');

// Prints one clear line on stderr and exits non-zero (the harness never throws stack traces at users).
function die(msg) {
  process.stderr.write(`error: ${msg}\n`);
  process.exit(1);
}

// Loads onnxruntime-node, or explains how to install it.
function loadOrt() {
  try {
    return require('onnxruntime-node');
  } catch (e) {
    die(`cannot load onnxruntime-node (${e.message.split('\n')[0]}); run scripts/ort_setup.sh`);
  }
}

// Parses argv into {positional: [...], options: {name: value | [values]}}.
// `spec` maps option name -> 'flag' | 'value' | 'list' (list options may repeat).
function parseArgs(argv, spec, usage) {
  const out = {positional: [], options: {}};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') {
      process.stdout.write(usage);
      process.exit(0);
    }
    if (!a.startsWith('--')) {
      out.positional.push(a);
      continue;
    }
    let name = a.slice(2);
    let value;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const kind = spec[name];
    if (!kind) die(`unknown option --${name} (see --help)`);
    if (kind === 'flag') {
      if (value !== undefined) die(`--${name} takes no value`);
      out.options[name] = true;
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) die(`--${name} needs a value`);
      value = argv[++i];
    }
    if (kind === 'list') {
      (out.options[name] = out.options[name] || []).push(value);
    } else {
      out.options[name] = value;
    }
  }
  return out;
}

// Parses a positive integer option value, naming the option on error.
function positiveInt(name, text, {allowZero = false} = {}) {
  if (!/^\d+$/.test(String(text))) die(`--${name} must be a non-negative integer, got '${text}'`);
  const v = Number(text);
  if (!Number.isSafeInteger(v) || (!allowZero && v === 0)) die(`--${name} must be positive, got '${text}'`);
  return v;
}

// Latency statistics over per-run times in milliseconds. These definitions are the ones
// `qforge bench` uses (src/cli/cmd_bench.cc), so the two tools' figures are comparable:
//   median: middle element of the sorted times; mean of the two middle ones when n is even.
//   p90:    nearest-rank 90th percentile: sorted[ceil(0.9 * n) - 1].
//   min, max, mean: as named (mean is the arithmetic mean); stddev: sample (n - 1), 0 for n = 1.
//   throughput: batch / median, in items per second.
function latencyStats(timesMs, batch) {
  if (timesMs.length === 0) throw new Error('latencyStats: no samples');
  const s = [...timesMs].sort((a, b) => a - b);
  const n = s.length;
  const median = n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  const p90 = s[Math.ceil(0.9 * n) - 1];
  const mean = s.reduce((a, b) => a + b, 0) / n;
  const stddev = n > 1 ? Math.sqrt(s.reduce((a, v) => a + (v - mean) * (v - mean), 0) / (n - 1)) : 0;
  return {runs: n, median_ms: median, p90_ms: p90, min_ms: s[0], max_ms: s[n - 1], mean_ms: mean,
          stddev_ms: stddev, throughput_per_s: batch * 1000 / median};
}

// ---- .npy (NumPy format 1.0 / 2.0 / 3.0, little-endian, C order) ----

// numpy dtype descr -> [ORT tensor type, TypedArray constructor].
const NPY_TYPES = {
  '<f4': ['float32', Float32Array], '<f8': ['float64', Float64Array],
  '|i1': ['int8', Int8Array], '|u1': ['uint8', Uint8Array], '|b1': ['bool', Uint8Array],
  '<i2': ['int16', Int16Array], '<u2': ['uint16', Uint16Array],
  '<i4': ['int32', Int32Array], '<u4': ['uint32', Uint32Array],
  '<i8': ['int64', BigInt64Array], '<u8': ['uint64', BigUint64Array],
  '<f2': ['float16', Uint16Array],
};
const ORT_TO_NPY = {};
for (const [descr, [type]] of Object.entries(NPY_TYPES)) ORT_TO_NPY[type] = descr;

// Reads a .npy file into {type, dims, data} (data is a TypedArray owning a copy of the payload).
function readNpy(path) {
  let buf;
  try {
    buf = fs.readFileSync(path);
  } catch (e) {
    die(`cannot read ${path}: ${e.code || e.message}`);
  }
  const magic = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);  // \x93NUMPY
  if (buf.length < 10 || !buf.subarray(0, 6).equals(magic)) die(`${path}: not a .npy file`);
  const major = buf[6];
  let headerLen, start;
  if (major === 1) {
    headerLen = buf.readUInt16LE(8);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) die(`${path}: truncated .npy header`);
    headerLen = buf.readUInt32LE(8);
    start = 12;
  } else {
    die(`${path}: unsupported .npy version ${major}`);
  }
  if (start + headerLen > buf.length) die(`${path}: truncated .npy header`);
  const header = buf.subarray(start, start + headerLen).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header);
  const order = /'fortran_order':\s*(True|False)/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !order || !shape) die(`${path}: malformed .npy header: ${header.trim()}`);
  if (order[1] === 'True') die(`${path}: Fortran-order arrays are not supported; save with C order`);
  const t = NPY_TYPES[descr[1]];
  if (!t) die(`${path}: unsupported dtype '${descr[1]}'`);
  const dims = shape[1].split(',').map((x) => x.trim()).filter((x) => x.length).map(Number);
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) die(`${path}: bad shape (${shape[1]})`);
  const count = dims.reduce((a, b) => a * b, 1);
  const [type, Ctor] = t;
  const bytes = count * Ctor.BYTES_PER_ELEMENT;
  const dataStart = start + headerLen;
  if (buf.length - dataStart !== bytes) {
    die(`${path}: payload is ${buf.length - dataStart} bytes, shape (${dims}) ${descr[1]} needs ${bytes}`);
  }
  const data = new Ctor(count);
  Buffer.from(data.buffer).set(buf.subarray(dataStart, dataStart + bytes));
  return {type, dims, data};
}

// Writes {type, dims, data} as a version 1.0 .npy file.
function writeNpy(path, type, dims, data) {
  const descr = ORT_TO_NPY[type];
  if (!descr) die(`cannot write tensor of type ${type} to .npy`);
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  // Pad with spaces so magic(6)+version(2)+len(2)+header+'\n' is a multiple of 64.
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(head);
  head.writeUInt16LE(header.length, 8);
  const payload = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  fs.writeFileSync(path, Buffer.concat([head, Buffer.from(header, 'latin1'), payload]));
}

// ---- IDX (MNIST family), optionally gzip-compressed ----

// Reads an unsigned-byte IDX file into {dims, data: Uint8Array}.
function readIdx(path) {
  let buf;
  try {
    buf = fs.readFileSync(path);
    if (path.endsWith('.gz')) buf = zlib.gunzipSync(buf);
  } catch (e) {
    die(`cannot read IDX file ${path}: ${e.code || e.message}`);
  }
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0) die(`${path}: not an IDX file (bad magic)`);
  if (buf[2] !== 0x08) die(`${path}: expected unsigned byte IDX data (0x08), got 0x${buf[2].toString(16)}`);
  const ndim = buf[3];
  if (buf.length < 4 + 4 * ndim) die(`${path}: truncated IDX header`);
  const dims = [];
  for (let i = 0; i < ndim; i++) dims.push(buf.readUInt32BE(4 + 4 * i));
  const count = dims.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * ndim;
  if (buf.length - start !== count) die(`${path}: ${buf.length - start} data bytes, header dims (${dims}) need ${count}`);
  return {dims, data: new Uint8Array(buf.buffer, buf.byteOffset + start, count)};
}

module.exports = {die, loadOrt, parseArgs, positiveInt, latencyStats, readNpy, writeNpy, readIdx};
