#!/usr/bin/env node
// ortcompare: run two ONNX models in ONNX Runtime (onnxruntime-node, CPU) on the
// same seeded random inputs and compare their outputs.
//
//   node tests/e2e/ortcompare.js SOURCE.onnx OTHER.onnx [--dim NAME=N ...] [--seed N] [--tol T]
//
// Inputs are made for every graph input of SOURCE from its metadata: symbolic dims
// are bound by --dim (defaults batch=2, seq=8, any other symbolic dim 2); float
// inputs are uniform in [-1, 1]; integer inputs whose name contains "mask" are 0 or 1
// with the first column (index 0 of the last dim) 1, other integer inputs are in
// [0, 16); bool inputs are random. Every output of SOURCE is compared with OTHER's
// output of the same name: shapes must be equal and
// max|a-b| / max(max|a|, 1e-6) <= tol (a = SOURCE, b = OTHER).
//
// Prints one line per output, "ok NAME [SHAPE] relerr=E" or "FAIL NAME ...".
// Exit 0 if all are ok, 1 if any is not, 2 on bad usage or a model that cannot be
// loaded or run (one line "ortcompare: error: ..." on stderr).
'use strict';

const path = require('path');

const USAGE =
  'usage: node ortcompare.js SOURCE.onnx OTHER.onnx [--dim NAME=N ...] [--seed N] [--tol T]';

class UsageError extends Error {}

function die(msg) {
  process.stderr.write(`ortcompare: error: ${msg}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const opt = { files: [], dims: { batch: 2, seq: 8 }, seed: 0, tol: 1e-4 };
  const take = (i, flag) => {
    if (i + 1 >= argv.length) throw new UsageError(`${flag} needs a value`);
    return argv[i + 1];
  };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let val = null;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    if (eq > 0) {
      val = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE + '\n');
      process.exit(0);
    } else if (a === '--dim') {
      if (val === null) val = take(i++, a);
      const m = /^([^=]+)=(\d+)$/.exec(val);
      if (!m) throw new UsageError(`--dim wants NAME=N, got "${val}"`);
      opt.dims[m[1]] = parseInt(m[2], 10);
    } else if (a === '--seed') {
      if (val === null) val = take(i++, a);
      if (!/^\d+$/.test(val)) throw new UsageError(`--seed wants a non-negative integer, got "${val}"`);
      opt.seed = Number(BigInt(val) & 0xffffffffn);
    } else if (a === '--tol') {
      if (val === null) val = take(i++, a);
      const t = Number(val);
      if (val.trim() === '' || !Number.isFinite(t) || t < 0) throw new UsageError(`--tol wants a number >= 0, got "${val}"`);
      opt.tol = t;
    } else if (a.startsWith('-') && a !== '-') {
      throw new UsageError(`unknown option "${argv[i]}"`);
    } else {
      opt.files.push(argv[i]);
    }
  }
  if (opt.files.length !== 2) throw new UsageError(`want two model files, got ${opt.files.length}`);
  return opt;
}

// mulberry32: a small seeded PRNG, uniform in [0, 1)
function mulberry32(seed) {
  let a = seed >>> 0;
  return function () {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// float32 -> IEEE half bits (round to nearest even), for float16 inputs
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function toHalf(x) {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}

function halfToFloat(h) {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

const FLOAT_TYPES = new Set(['float32', 'float64', 'float16']);
const INT_TYPES = {
  int64: BigInt64Array,
  uint64: BigUint64Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int8: Int8Array,
  uint8: Uint8Array,
};

function bindShape(name, shape, dims) {
  if (!Array.isArray(shape)) throw new Error(`input "${name}" has no shape in its metadata`);
  return shape.map((d) => {
    if (typeof d === 'number' && d >= 0) return d;
    if (typeof d === 'string' && d !== '' && Object.prototype.hasOwnProperty.call(dims, d)) return dims[d];
    return 2; // any other symbolic (or unnamed) dim
  });
}

function makeInput(ort, meta, dims, rand) {
  const name = meta.name;
  if (meta.isTensor === false) throw new Error(`input "${name}" is not a tensor`);
  const type = meta.type;
  const shape = bindShape(name, meta.shape, dims);
  const n = shape.reduce((p, d) => p * d, 1);
  const last = shape.length ? shape[shape.length - 1] : 1;
  if (FLOAT_TYPES.has(type)) {
    const vals = new Float64Array(n);
    for (let i = 0; i < n; i++) vals[i] = rand() * 2 - 1;
    let data;
    if (type === 'float32') data = Float32Array.from(vals);
    else if (type === 'float64') data = vals;
    else data = Uint16Array.from(vals, toHalf);
    return new ort.Tensor(type, data, shape);
  }
  if (type === 'bool') {
    const data = new Uint8Array(n);
    for (let i = 0; i < n; i++) data[i] = rand() < 0.5 ? 1 : 0;
    return new ort.Tensor('bool', data, shape);
  }
  const Ctor = INT_TYPES[type];
  if (!Ctor) throw new Error(`input "${name}" has type ${type}, which ortcompare cannot make`);
  const isMask = /mask/i.test(name);
  const data = new Ctor(n);
  const big = Ctor === BigInt64Array || Ctor === BigUint64Array;
  for (let i = 0; i < n; i++) {
    let v = isMask ? (rand() < 0.5 ? 0 : 1) : Math.floor(rand() * 16);
    if (isMask && last > 0 && i % last === 0) v = 1;
    data[i] = big ? BigInt(v) : v;
  }
  return new ort.Tensor(type, data, shape);
}

function toNumbers(t) {
  const d = t.data;
  if (t.type === 'float16' && d instanceof Uint16Array) return Array.from(d, halfToFloat);
  return Array.from(d, Number);
}

function fmtShape(dims) {
  return '[' + Array.from(dims).join(',') + ']';
}

function compare(name, a, b, tol) {
  if (!b) return { ok: false, line: `FAIL ${name}: not an output of OTHER` };
  const sa = Array.from(a.dims);
  const sb = Array.from(b.dims);
  if (sa.length !== sb.length || sa.some((d, i) => d !== sb[i]))
    return { ok: false, line: `FAIL ${name} shape ${fmtShape(sa)} vs ${fmtShape(sb)}` };
  if (a.type !== b.type)
    return { ok: false, line: `FAIL ${name} ${fmtShape(sa)} type ${a.type} vs ${b.type}` };
  const x = toNumbers(a);
  const y = toNumbers(b);
  let maxDiff = 0;
  let maxAbs = 0;
  let bad = -1;
  for (let i = 0; i < x.length; i++) {
    const p = x[i];
    const q = y[i];
    if (Number.isFinite(p) && Math.abs(p) > maxAbs) maxAbs = Math.abs(p);
    if (p === q || (Number.isNaN(p) && Number.isNaN(q))) continue;
    const d = Math.abs(p - q);
    if (!(d <= maxDiff)) {
      // NaN or Infinity differences count as mismatches at once
      if (!Number.isFinite(d)) {
        if (bad < 0) bad = i;
        maxDiff = Infinity;
      } else maxDiff = d;
    }
  }
  const rel = maxDiff / Math.max(maxAbs, 1e-6);
  const r = rel.toExponential(3);
  if (bad >= 0)
    return { ok: false, line: `FAIL ${name} ${fmtShape(sa)} relerr=${r} (at flat index ${bad}: ${x[bad]} vs ${y[bad]})` };
  if (rel <= tol) return { ok: true, line: `ok ${name} ${fmtShape(sa)} relerr=${r}` };
  return { ok: false, line: `FAIL ${name} ${fmtShape(sa)} relerr=${r} > tol=${tol}` };
}

async function main() {
  let opt;
  try {
    opt = parseArgs(process.argv.slice(2));
  } catch (e) {
    if (e instanceof UsageError) die(`${e.message} (${USAGE})`);
    throw e;
  }
  let ort;
  try {
    ort = require('onnxruntime-node');
  } catch (e) {
    die(
      `cannot load onnxruntime-node (${e.message.split('\n')[0]}); ` +
        `run "npm install --ignore-scripts" in ${path.relative(process.cwd(), __dirname) || '.'}`
    );
  }
  // ORT's own log would print run errors a second time: keep it to fatal ones
  ort.env.logLevel = 'fatal';
  const sessOpt = { executionProviders: ['cpu'], logSeverityLevel: 4 };
  const sessions = [];
  for (const f of opt.files) {
    try {
      sessions.push(await ort.InferenceSession.create(f, sessOpt));
    } catch (e) {
      die(`cannot load ${f}: ${String(e.message || e).split('\n')[0]}`);
    }
  }
  const [src, oth] = sessions;
  const metas = src.inputMetadata;
  if (!Array.isArray(metas) || metas.length !== src.inputNames.length)
    die('this onnxruntime-node gives no input metadata (need 1.22 or later)');

  const rand = mulberry32(opt.seed);
  const feeds = {};
  try {
    for (const m of metas) feeds[m.name] = makeInput(ort, m, opt.dims, rand);
  } catch (e) {
    die(`${opt.files[0]}: ${e.message}`);
  }
  const othFeeds = {};
  for (const n of oth.inputNames) {
    if (!(n in feeds)) die(`${opt.files[1]} has input "${n}", which ${opt.files[0]} does not have`);
    othFeeds[n] = feeds[n];
  }

  const results = [];
  for (const [i, [s, f]] of [
    [src, feeds],
    [oth, othFeeds],
  ].entries()) {
    try {
      results.push(await s.run(f, { logSeverityLevel: 4 }));
    } catch (e) {
      die(`running ${opt.files[i]}: ${String(e.message || e).split('\n')[0]}`);
    }
  }
  const [ra, rb] = results;
  let allOk = true;
  for (const name of src.outputNames) {
    const c = compare(name, ra[name], rb[name], opt.tol);
    if (!c.ok) allOk = false;
    process.stdout.write(c.line + '\n');
  }
  process.exit(allOk ? 0 : 1);
}

if (require.main === module) {
  main().catch((e) => die(String((e && e.message) || e).split('\n')[0]));
} else {
  module.exports = { parseArgs, mulberry32, makeInput, compare, toHalf, halfToFloat };
}
