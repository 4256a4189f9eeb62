// Runs two ONNX models in ONNX Runtime (onnxruntime-node, CPU) on the same
// generated inputs and compares every output by cosine similarity.
//
//   node ort_compare.mjs --ref A.onnx --test B.onnx [--min-cosine 0.999] [--max-abs D]
//        [--max-rel R] [--seq 4] [--seed 1] [--outputs a,b] [--json]
//        [--opt disabled|basic|extended|all]   (graph optimization level, default all)
//
// Inputs are generated from the reference model's metadata: symbolic dims
// named *past* are 0, *batch* are 1, others (sequence, total) are --seq;
// integer inputs named *mask* are ones, *position* count 0..seq-1, other
// integer inputs (token ids) are small pseudo-random ids; float inputs are
// pseudo-random N(0,1)-ish. Each input is cast to the type the test model
// declares, so FP16 I/O models get the same values.
// --max-rel bounds max |diff| / max |ref| per output (non-finite values fail).
// Exit code: 0 when every output's cosine >= min, 1 otherwise, 2 on errors.
import ort from 'onnxruntime-node';
import { toHalf, halfToFloat } from './half.mjs';

function parseArgs(argv) {
  const a = { minCosine: 0.999, seq: 4, seed: 1, json: false, outputs: null, opt: 'all' };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i];
    const v = () => argv[++i];
    if (k === '--ref') a.ref = v();
    else if (k === '--test') a.test = v();
    else if (k === '--min-cosine') a.minCosine = parseFloat(v());
    else if (k === '--max-abs') a.maxAbs = parseFloat(v());
    else if (k === '--max-rel') a.maxRel = parseFloat(v());
    else if (k === '--seq') a.seq = parseInt(v(), 10);
    else if (k === '--seed') a.seed = parseInt(v(), 10);
    else if (k === '--outputs') a.outputs = v().split(',');
    else if (k === '--json') a.json = true;
    else if (k === '--opt') a.opt = v();
    else throw new Error(`unknown argument ${k}`);
  }
  if (!a.ref || !a.test) throw new Error('need --ref and --test');
  return a;
}

function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}

function resolveDims(shape, seq) {
  return shape.map((d) => {
    if (typeof d === 'number' && d >= 0) return d;
    const n = String(d).toLowerCase();
    if (n.includes('past')) return 0;
    if (n.includes('batch')) return 1;
    return seq;
  });
}

function makeValues(meta, dims, seq, rand) {
  const n = dims.reduce((p, d) => p * d, 1);
  const name = meta.name.toLowerCase();
  const vals = new Array(n);
  const isFloat = ['float32', 'float16', 'float64', 'bfloat16'].includes(meta.type);
  for (let i = 0; i < n; i++) {
    if (isFloat) vals[i] = (rand() + rand() + rand() - 1.5) * 2;
    else if (name.includes('mask')) vals[i] = 1;
    else if (name.includes('position')) vals[i] = i % dims[dims.length - 1];
    else if (name.includes('seqlens')) vals[i] = seq - 1;
    else if (name.includes('total_sequence')) vals[i] = seq;
    else vals[i] = Math.floor(rand() * 100);
  }
  return vals;
}

function makeTensor(type, values, dims) {
  switch (type) {
    case 'float32': return new ort.Tensor('float32', Float32Array.from(values), dims);
    case 'float64': return new ort.Tensor('float64', Float64Array.from(values), dims);
    case 'float16': return new ort.Tensor('float16', Uint16Array.from(values.map(toHalf)), dims);
    case 'int64': return new ort.Tensor('int64', BigInt64Array.from(values.map((v) => BigInt(v))), dims);
    case 'int32': return new ort.Tensor('int32', Int32Array.from(values), dims);
    case 'bool': return new ort.Tensor('bool', Uint8Array.from(values), dims);
    default: throw new Error(`unsupported input type ${type}`);
  }
}

function toFloats(t) {
  if (t.type === 'float16') {
    const raw = t.data instanceof Uint16Array ? t.data : new Uint16Array(t.data.buffer, t.data.byteOffset, t.data.length);
    return Array.from(raw, halfToFloat);
  }
  return Array.from(t.data, Number);
}

function cosine(a, b) {
  let dot = 0, na = 0, nb = 0, bad = 0;
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i]) || !Number.isFinite(b[i])) { bad++; continue; }
    dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i];
  }
  if (bad) return NaN;
  if (na === 0 && nb === 0) return 1;
  return dot / Math.sqrt(na * nb);
}

async function main() {
  const args = parseArgs(process.argv);
  const opts = { executionProviders: ['cpu'], graphOptimizationLevel: args.opt };
  const ref = await ort.InferenceSession.create(args.ref, opts);
  const test = await ort.InferenceSession.create(args.test, opts);
  const testTypes = Object.fromEntries(test.inputMetadata.map((m) => [m.name, m.type]));
  const rand = rng(args.seed);
  const refFeeds = {}, testFeeds = {};
  for (const meta of ref.inputMetadata) {
    if (!meta.isTensor) throw new Error(`input ${meta.name} is not a tensor`);
    const dims = resolveDims(meta.shape, args.seq);
    const values = makeValues(meta, dims, args.seq, rand);
    refFeeds[meta.name] = makeTensor(meta.type, values, dims);
    const tt = testTypes[meta.name];
    if (!tt) throw new Error(`test model has no input ${meta.name}`);
    testFeeds[meta.name] = makeTensor(tt, values, dims);
  }
  const a = await ref.run(refFeeds);
  const b = await test.run(testFeeds);
  const names = args.outputs ?? ref.outputNames;
  const results = [];
  let ok = true;
  for (const name of names) {
    if (!(name in b)) throw new Error(`test model has no output ${name}`);
    const va = toFloats(a[name]), vb = toFloats(b[name]);
    if (va.length !== vb.length) throw new Error(`output ${name}: ${va.length} vs ${vb.length} values`);
    const c = va.length === 0 ? 1 : cosine(va, vb);
    let maxAbs = 0, maxRef = 0;
    for (let i = 0; i < va.length; i++) {
      maxAbs = Math.max(maxAbs, Math.abs(Number(va[i]) - Number(vb[i])));
      maxRef = Math.max(maxRef, Math.abs(Number(va[i])));
    }
    const rel = maxRef > 0 ? maxAbs / maxRef : maxAbs;
    const pass = c >= args.minCosine && (args.maxAbs === undefined || maxAbs <= args.maxAbs) &&
      (args.maxRel === undefined || rel <= args.maxRel);
    ok &&= pass;
    results.push({ name, cosine: c, maxAbs, rel, values: va.length, refType: a[name].type, testType: b[name].type, pass });
  }
  if (args.json) console.log(JSON.stringify({ ok, results }));
  else for (const r of results) console.log(`${r.pass ? 'ok  ' : 'FAIL'} ${r.name}: cosine ${r.cosine.toFixed(6)}, max |diff| ${r.maxAbs.toExponential(2)} (rel ${r.rel.toExponential(2)}, ${r.values} values, ${r.refType} vs ${r.testType})`);
  process.exit(ok ? 0 : 1);
}

main().catch((e) => { console.error(`ort_compare: ${e.message ?? e}`); process.exit(2); });
