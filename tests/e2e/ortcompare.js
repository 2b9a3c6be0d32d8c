#!/usr/bin/env node
// ortcompare: run two ONNX models in ONNX Runtime (onnxruntime-node, CPU) on the
// same seeded random inputs and compare their outputs.
//
//   node tests/e2e/ortcompare.js SOURCE.onnx OTHER.onnx [--dim NAME=N ...] [--seed N] [--tol T] [--atol A]
//        [--int-max NAME=N ...] [--ones NAME ...] [--replicas-exact] [--data FILE.json]
//   node tests/e2e/ortcompare.js --batch CASES.jsonl
//
// Inputs are made for every graph input of SOURCE from its metadata: symbolic dims
// are bound by --dim (defaults batch=2, seq=8, any other symbolic dim 2); float
// inputs are uniform in [-1, 1]; integer inputs named by --int-max are in [0, N)
// (ids that index a table of N rows: int_ranges in tests/e2e/sweep.py finds them); other
// integer inputs whose name contains "mask" are 0 or 1 with the first column
// (index 0 of the last dim) 1, the rest in [0, 16); bool inputs are random.
// --ones NAME fills the integer or bool input NAME with 1 (an attention mask
// that must be all ones, where a random 0/1 mask leaves an op's output undefined).
// --accuracy-level N sets ONNX Runtime's session.qdq_matmulnbits_accuracy_level
// in both sessions: the level of the MatMulNBits its optimizer fuses from a 4-bit
// DequantizeLinear and a MatMul. Its default, 4, quantizes the activations to int8
// per block of K, so a model and its shards (K split elsewhere, or the fusion
// left out where a stitched model shares a scale) differ by about 1e-2; level 1
// computes in float32.
// --data FILE.json instead gives the inputs and the expected outputs
// ({"inputs": [T...], "outputs": [T...]}, T = {"name", "type", "dims", "b64"
// (little-endian raw bytes; float16 as its bits, bool as bytes) or "strings"}).
//
// Every output of SOURCE is compared with OTHER's output of the same name
// (a = SOURCE, b = OTHER), element by element: shapes and types must be equal;
// strings, integers and booleans must be equal exactly; floats must satisfy
// |a-b| <= atol + rtol*|a| at every element, rtol = --tol (default 1e-4) and
// atol = --atol (default rtol/10: 1e-5 for the default rtol), NaN only where a
// is NaN, an infinity only where a is the same infinity. (No normalisation by
// the output's largest value: a small element is held to its own size.)
// With --data, b is compared with the expected outputs instead (and a source whose
// own result differs from them is reported, not blamed on OTHER). Every output of
// OTHER named NAME@replicaK (what `onnxshard stitch` writes for each replica of an
// output beyond the first) is compared with SOURCE's NAME too; --replicas-exact
// also requires it bit-identical to OTHER's NAME (replica 0).
//
// Prints one line per output, "ok NAME [SHAPE] relerr=E" (floats: the worst
// element's |a-b| / (|a| + atol/rtol), at most rtol), "ok NAME [SHAPE] exact"
// or "FAIL NAME ..." (how many elements are off, the worst one).
// Exit 0 if all are ok, 1 if any is not, 2 on bad usage or a model that cannot be
// loaded or run (one line "ortcompare: error: ..." on stderr).
//
// --batch runs many cases in one process: each line of CASES.jsonl is
// {"id", "source", "other", "dims"?, "intMax"?, "ones"? (a list of names), "seed"?, "tol"?, "atol"?,
// "replicasExact"?, "accuracyLevel"?, "data"?}; it prints one line per case, "ID pass", "ID fail: WHY" or
// "ID skip: WHY" (skip: ONNX Runtime cannot load or run SOURCE itself, or its
// result differs from the test data), after a pass or a fail "ID ids NAME=I,J,...
// ..." with the distinct ids drawn for each --int-max input (random inputs only),
// and exits 0 (the caller counts).
'use strict';

const path = require('path');

const USAGE =
  'usage: node ortcompare.js SOURCE.onnx OTHER.onnx [--dim NAME=N ...] [--seed N] [--tol T] [--atol A] ' +
  '[--int-max NAME=N ...] [--ones NAME ...] [--replicas-exact] [--accuracy-level N] [--data FILE.json] | ' +
  '--batch CASES.jsonl';

class UsageError extends Error {}

function die(msg) {
  process.stderr.write(`ortcompare: error: ${msg}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const opt = { files: [], dims: { batch: 2, seq: 8 }, seed: 0, tol: 1e-4, atol: null, intMax: {}, ones: [], replicasExact: false, data: null, batch: null, accuracyLevel: null };
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
    } else if (a === '--int-max') {
      if (val === null) val = take(i++, a);
      const m = /^([^=]+)=(\d+)$/.exec(val);
      if (!m || parseInt(m[2], 10) < 1) throw new UsageError(`--int-max wants NAME=N (N >= 1), got "${val}"`);
      opt.intMax[m[1]] = parseInt(m[2], 10);
    } else if (a === '--ones') {
      if (val === null) val = take(i++, a);
      if (val === '') throw new UsageError('--ones wants an input name');
      opt.ones.push(val);
    } else if (a === '--replicas-exact') {
      opt.replicasExact = true;
    } else if (a === '--accuracy-level') {
      if (val === null) val = take(i++, a);
      if (!/^[0-4]$/.test(val)) throw new UsageError(`--accuracy-level wants 0..4, got "${val}"`);
      opt.accuracyLevel = val;
    } else if (a === '--data' || a === '--batch') {
      if (val === null) val = take(i++, a);
      opt[a.slice(2)] = val;
    } else if (a === '--seed') {
      if (val === null) val = take(i++, a);
      if (!/^\d+$/.test(val)) throw new UsageError(`--seed wants a non-negative integer, got "${val}"`);
      opt.seed = Number(BigInt(val) & 0xffffffffn);
    } else if (a === '--tol' || a === '--atol') {
      if (val === null) val = take(i++, a);
      const t = Number(val);
      if (val.trim() === '' || !Number.isFinite(t) || t < 0) throw new UsageError(`${a} wants a number >= 0, got "${val}"`);
      opt[a.slice(2)] = t;
    } else if (a.startsWith('-') && a !== '-') {
      throw new UsageError(`unknown option "${argv[i]}"`);
    } else {
      opt.files.push(argv[i]);
    }
  }
  if (opt.batch !== null) {
    if (opt.files.length) throw new UsageError('--batch takes no model files');
  } else if (opt.files.length !== 2) throw new UsageError(`want two model files, got ${opt.files.length}`);
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

function makeInput(ort, meta, dims, rand, intMax, ones) {
  const name = meta.name;
  if (meta.isTensor === false) throw new Error(`input "${name}" is not a tensor`);
  const type = meta.type;
  const shape = bindShape(name, meta.shape, dims);
  const n = shape.reduce((p, d) => p * d, 1);
  const last = shape.length ? shape[shape.length - 1] : 1;
  const one = Array.isArray(ones) && ones.includes(name);
  if (one && !(type === 'bool' || type in INT_TYPES)) throw new Error(`--ones input "${name}" has type ${type}, not integer or bool`);
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
    for (let i = 0; i < n; i++) data[i] = one || rand() < 0.5 ? 1 : 0;
    return new ort.Tensor('bool', data, shape);
  }
  const Ctor = INT_TYPES[type];
  if (!Ctor) throw new Error(`input "${name}" has type ${type}, which ortcompare cannot make`);
  const hi = intMax && Object.prototype.hasOwnProperty.call(intMax, name) ? intMax[name] : 16;
  const isMask = /mask/i.test(name) && !(intMax && name in intMax);
  const data = new Ctor(n);
  const big = Ctor === BigInt64Array || Ctor === BigUint64Array;
  for (let i = 0; i < n; i++) {
    let v = isMask ? (rand() < 0.5 ? 0 : 1) : Math.floor(rand() * hi);
    if ((isMask && last > 0 && i % last === 0) || one) v = 1;
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

// Element-wise comparison of SOURCE's output a with OTHER's b: the same shape
// and type; strings, integers and booleans equal exactly; floats within
// |a-b| <= atol + rtol*|a| at every element (NaN only against NaN, an infinity
// only against the same infinity). relerr is the worst element's
// |a-b| / (|a| + atol/rtol) (|a-b| / atol when rtol is 0): the element passes
// when it is at most rtol.
function compare(name, a, b, rtol, atol) {
  if (!b) return { ok: false, line: `FAIL ${name}: not an output of OTHER` };
  const sa = Array.from(a.dims);
  const sb = Array.from(b.dims);
  if (sa.length !== sb.length || sa.some((d, i) => d !== sb[i]))
    return { ok: false, line: `FAIL ${name} shape ${fmtShape(sa)} vs ${fmtShape(sb)}` };
  if (a.type !== b.type)
    return { ok: false, line: `FAIL ${name} ${fmtShape(sa)} type ${a.type} vs ${b.type}` };
  const head = `${name} ${fmtShape(sa)}`;
  if (!FLOAT_TYPES.has(a.type)) {
    // strings, integers (BigInt for 64 bits) and booleans: exact
    const x = a.data;
    const y = b.data;
    let bad = -1;
    let n = 0;
    for (let i = 0; i < x.length; i++) {
      if (x[i] === y[i]) continue;
      if (bad < 0) bad = i;
      n++;
    }
    if (bad < 0) return { ok: true, line: `ok ${head} exact` };
    const show = (v) => (typeof v === 'string' ? JSON.stringify(v) : String(v));
    return { ok: false, line: `FAIL ${head} ${n} of ${x.length} elements differ (${a.type}, exact; at flat index ${bad}: ${show(x[bad])} vs ${show(y[bad])})` };
  }
  const x = toNumbers(a);
  const y = toNumbers(b);
  let worst = 0;
  let at = -1;
  let bad = -1;
  let n = 0;
  for (let i = 0; i < x.length; i++) {
    const p = x[i];
    const q = y[i];
    let e;
    if (p === q || (Number.isNaN(p) && Number.isNaN(q))) continue;
    if (!Number.isFinite(p) || !Number.isFinite(q)) e = Infinity; // NaN or an infinity against anything else
    else {
      const d = Math.abs(p - q);
      e = rtol > 0 ? d / (Math.abs(p) + atol / rtol) : atol > 0 ? d / atol : Infinity;
      if (!(d > atol + rtol * Math.abs(p))) {
        if (e > worst) (worst = e), (at = i);
        continue;
      }
    }
    if (e >= worst) (worst = e), (at = i);
    if (bad < 0) bad = i;
    n++;
  }
  const r = worst.toExponential(3);
  const lim = `rtol=${rtol} atol=${atol}`;
  if (bad < 0) return { ok: true, line: `ok ${head} relerr=${r}` };
  return {
    ok: false,
    line: `FAIL ${head} relerr=${r}: ${n} of ${x.length} elements off (${lim}; worst at flat index ${at}: ${x[at]} vs ${y[at]})`,
  };
}

const DATA_TYPES = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  bool: Uint8Array,
  ...INT_TYPES,
};

// A tensor of a --data file ({name, type, dims, b64 | strings}).
function fromData(ort, t) {
  if (t.type === 'string') return new ort.Tensor('string', t.strings, t.dims);
  const Ctor = DATA_TYPES[t.type];
  if (!Ctor) throw new Error(`tensor "${t.name}" has type ${t.type}, which ortcompare cannot read`);
  const b = Buffer.from(t.b64, 'base64');
  const ab = new ArrayBuffer(b.length);
  new Uint8Array(ab).set(b);
  return new ort.Tensor(t.type, new Ctor(ab, 0, b.length / Ctor.BYTES_PER_ELEMENT), t.dims);
}

class Skip extends Error {}
class Fail extends Error {}

const firstLine = (e) => String((e && e.message) || e).split('\n')[0];

// One comparison: {lines, ok}; throws Skip when ONNX Runtime cannot run the
// source itself, Fail when OTHER cannot be loaded or run.
async function runCase(ort, c) {
  const sessOpt = { executionProviders: ['cpu'], logSeverityLevel: 4 };
  if (c.accuracyLevel != null) sessOpt.extra = { session: { qdq_matmulnbits_accuracy_level: String(c.accuracyLevel) } };
  let src, oth;
  try {
    src = await ort.InferenceSession.create(c.source, sessOpt);
  } catch (e) {
    throw new Skip(`cannot load ${c.source}: ${firstLine(e)}`);
  }
  try {
    oth = await ort.InferenceSession.create(c.other, sessOpt);
  } catch (e) {
    throw new Fail(`cannot load ${c.other}: ${firstLine(e)}`);
  }
  const metas = src.inputMetadata;
  if (!Array.isArray(metas) || metas.length !== src.inputNames.length)
    throw new Fail('this onnxruntime-node gives no input metadata (need 1.22 or later)');
  const feeds = {};
  let expected = null;
  if (c.data) {
    const d = JSON.parse(require('fs').readFileSync(c.data, 'utf8'));
    for (const t of d.inputs) feeds[t.name] = fromData(ort, t);
    expected = {};
    for (const t of d.outputs) expected[t.name] = fromData(ort, t);
  } else {
    const rand = mulberry32(c.seed || 0);
    for (const m of metas) feeds[m.name] = makeInput(ort, m, { batch: 2, seq: 8, ...(c.dims || {}) }, rand, c.intMax || {}, c.ones || []);
  }
  const othFeeds = {};
  for (const n of oth.inputNames) {
    if (!(n in feeds)) throw new Fail(`${c.other} has input "${n}", which ${c.source} does not have`);
    othFeeds[n] = feeds[n];
  }
  let ra, rb;
  try {
    ra = await src.run(feeds, { logSeverityLevel: 4 });
  } catch (e) {
    throw new Skip(`running ${c.source}: ${firstLine(e)}`);
  }
  try {
    rb = await oth.run(othFeeds, { logSeverityLevel: 4 });
  } catch (e) {
    throw new Fail(`running ${c.other}: ${firstLine(e)}`);
  }
  const rtol = c.tol == null ? 1e-4 : c.tol;
  const atol = c.atol == null ? rtol / 10 : c.atol;
  const cmp = (name, x, y) => compare(name, x, y, rtol, atol);
  const lines = [];
  let ok = true;
  for (const name of src.outputNames) {
    let r;
    if (expected && name in expected) {
      r = cmp(name, expected[name], rb[name]);
      // ORT's own result off the test data: not OTHER's fault
      if (!r.ok && !cmp(name, expected[name], ra[name]).ok && cmp(name, ra[name], rb[name]).ok)
        throw new Skip(`ONNX Runtime's result for ${name} differs from the test data`);
    } else r = cmp(name, ra[name], rb[name]);
    ok = ok && r.ok;
    lines.push(r.line);
  }
  for (const name of oth.outputNames) {
    const m = /^(.*)@replica(\d+)$/.exec(name);
    if (!m) continue;
    const base = m[1];
    if (!src.outputNames.includes(base)) {
      ok = false;
      lines.push(`FAIL ${name}: ${base} is not an output of SOURCE`);
      continue;
    }
    const r = cmp(name, expected && base in expected ? expected[base] : ra[base], rb[name]);
    ok = ok && r.ok;
    lines.push(r.line);
    if (c.replicasExact) {
      const x = rb[base].data, y = rb[name].data;
      let same = x.length === y.length;
      for (let k = 0; same && k < x.length; k++) same = x[k] === y[k] || (Number.isNaN(x[k]) && Number.isNaN(y[k]));
      if (!same) {
        ok = false;
        lines.push(`FAIL ${name}: not bit-identical to ${base} (replica 0)`);
      }
    }
  }
  // the distinct ids drawn for each --int-max input, for the caller's
  // accounting of which rows of a split table were looked up
  const ids = {};
  if (!c.data)
    for (const n of Object.keys(c.intMax || {}))
      if (feeds[n]) ids[n] = [...new Set(Array.from(feeds[n].data, Number))].sort((p, q) => p - q);
  return { lines, ok, ids };
}

function loadOrt() {
  try {
    const ort = require('onnxruntime-node');
    // ORT's own log would print run errors a second time: keep it to fatal ones
    ort.env.logLevel = 'fatal';
    return ort;
  } catch (e) {
    die(
      `cannot load onnxruntime-node (${e.message.split('\n')[0]}); ` +
        `run "npm install --ignore-scripts" in ${path.relative(process.cwd(), __dirname) || '.'}`
    );
  }
}

async function batch(ort, file) {
  const text = require('fs').readFileSync(file, 'utf8');
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const c = JSON.parse(line);
    let out;
    try {
      const r = await runCase(ort, c);
      out = r.ok ? `${c.id} pass` : `${c.id} fail: ${r.lines.filter((l) => !l.startsWith('ok')).slice(0, 2).join('; ')}`;
      const ids = Object.entries(r.ids)
        .map(([n, v]) => `${n}=${v.join(',')}`)
        .join(' ');
      if (ids) process.stdout.write(`${c.id} ids ${ids}\n`);
    } catch (e) {
      out = `${c.id} ${e instanceof Skip ? 'skip' : 'fail'}: ${firstLine(e)}`;
    }
    process.stdout.write(out.replace(/\n/g, ' ') + '\n');
  }
}

async function main() {
  let opt;
  try {
    opt = parseArgs(process.argv.slice(2));
  } catch (e) {
    if (e instanceof UsageError) die(`${e.message} (${USAGE})`);
    throw e;
  }
  const ort = loadOrt();
  if (opt.batch !== null) {
    await batch(ort, opt.batch);
    process.exit(0);
  }
  let r;
  try {
    r = await runCase(ort, {
      source: opt.files[0],
      other: opt.files[1],
      dims: opt.dims,
      intMax: opt.intMax,
      ones: opt.ones,
      seed: opt.seed,
      tol: opt.tol,
      atol: opt.atol,
      replicasExact: opt.replicasExact,
      accuracyLevel: opt.accuracyLevel,
      data: opt.data,
    });
  } catch (e) {
    die(e instanceof Skip || e instanceof Fail ? e.message : `${opt.files[0]}: ${firstLine(e)}`);
  }
  for (const l of r.lines) process.stdout.write(l + '\n');
  process.exit(r.ok ? 0 : 1);
}

if (require.main === module) {
  main().catch((e) => die(String((e && e.message) || e).split('\n')[0]));
} else {
  module.exports = { parseArgs, mulberry32, makeInput, compare, toHalf, halfToFloat, runCase, Skip, Fail };
}
