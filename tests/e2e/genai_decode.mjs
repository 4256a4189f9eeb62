// Runs an ONNX Runtime GenAI decoder folder (model.onnx + model.onnx.data) in
// onnxruntime-node on CPU the way the GenAI runtime drives it: one prompt pass
// with empty past key/values, then decode steps of one token each through the
// KV cache (present.* fed back as past_key_values.*), and checks it.
//
//   node genai_decode.mjs --model DIR --ref REF.json [--against DIR2]
//        [--steps 16] [--tol 1e-4] [--require-top1] [--require-greedy]
//        [--cache-tol 1e-4] [--json OUT.json]
//
// Tokens: the prompt of REF.json, then its greedy tokens (teacher forcing, so
// a step compares like with like even where a model would pick another token).
// Figures, per position: log-softmax over the whole vocabulary, compared over
// the reference's top-10 ids.
//  * vs REF.json (a float32 forward pass of the Hugging Face model): the
//    16 prompt positions and the decode steps that REF.json has;
//  * --against DIR2: DIR2 run on the same tokens is the reference instead
//    (its own top-10 per position), for every prompt position and step;
//  * cache: every decode step is re-run as one pass over the whole sequence
//    without past, and must agree with the cached step within --cache-tol.
// Prints a JSON summary; exit 0 when every requested check holds, 1 when one
// fails, 2 on errors.
import fs from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { halfToFloat } from './half.mjs';

function parseArgs(argv) {
  const a = { steps: 16, tol: null, cacheTol: null, requireTop1: false, requireGreedy: false };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i];
    const v = () => argv[++i];
    if (k === '--model') a.model = v();
    else if (k === '--ref') a.ref = v();
    else if (k === '--against') a.against = v();
    else if (k === '--steps') a.steps = parseInt(v(), 10);
    else if (k === '--tol') a.tol = parseFloat(v());
    else if (k === '--cache-tol') a.cacheTol = parseFloat(v());
    else if (k === '--require-top1') a.requireTop1 = true;
    else if (k === '--require-greedy') a.requireGreedy = true;
    else if (k === '--json') a.json = v();
    else throw new Error(`unknown argument ${k}`);
  }
  if (!a.model || !a.ref) throw new Error('need --model and --ref');
  return a;
}

function floats(t) {
  if (t.type === 'float16') {
    const raw = t.data instanceof Uint16Array ? t.data
      : new Uint16Array(t.data.buffer, t.data.byteOffset, t.data.length);
    return Float64Array.from(raw, halfToFloat);
  }
  return Float64Array.from(t.data);
}

// log-softmax of row `r` of a [1, S, V] logits tensor.
function logSoftmaxRow(values, r, vocab) {
  const row = values.subarray(r * vocab, (r + 1) * vocab);
  let max = -Infinity;
  for (const x of row) max = Math.max(max, x);
  let sum = 0;
  for (const x of row) sum += Math.exp(x - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(row, (x) => x - lse);
}

function argmax(row) {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

class Decoder {
  static async open(dir) {
    const d = new Decoder();
    d.session = await ort.InferenceSession.create(path.join(dir, 'model.onnx'),
      { graphOptimizationLevel: 'all', intraOpNumThreads: 1 });
    d.pastNames = d.session.inputNames.filter((n) => n.startsWith('past_key_values.'));
    const meta = d.session.inputMetadata.find((m) => m.name === d.pastNames[0]);
    d.kvType = meta.type;
    d.kvHeads = meta.shape[1];
    d.headDim = meta.shape[3];
    return d;
  }

  emptyPast() {
    const past = {};
    const data = this.kvType === 'float16' ? new Uint16Array(0) : new Float32Array(0);
    for (const n of this.pastNames) past[n] = new ort.Tensor(this.kvType, data, [1, this.kvHeads, 0, this.headDim]);
    return past;
  }

  // Runs `ids` after `past` (total length = past + ids); returns
  // { logp: [rows of log-softmax], past: next past }.
  async run(ids, past, pastLen) {
    const total = pastLen + ids.length;
    const feeds = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(total).fill(1n), [1, total]),
      ...past,
    };
    const out = await this.session.run(feeds);
    const logits = out.logits;
    const vocab = logits.dims[2];
    const values = floats(logits);
    const rows = [];
    for (let r = 0; r < ids.length; r++) rows.push(logSoftmaxRow(values, r, vocab));
    const next = {};
    for (const n of this.pastNames) next[n] = out[n.replace('past_key_values.', 'present.')];
    return { rows, past: next };
  }
}

// Max |Δ log-prob| over `ids`.
function maxDelta(a, b, ids) {
  let m = 0;
  for (const id of ids) m = Math.max(m, Math.abs(a[id] - b[id]));
  return m;
}

function top10(row) {
  return Array.from(row.keys()).sort((x, y) => row[y] - row[x]).slice(0, 10);
}

function cosine(a, b) {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) { ab += a[i] * b[i]; aa += a[i] * a[i]; bb += b[i] * b[i]; }
  return ab / Math.sqrt(aa * bb);
}

// Prompt rows then one row per decode step, on the teacher-forced tokens.
async function trace(dec, prompt, tokens, steps, cacheCheck) {
  const first = await dec.run(prompt, dec.emptyPast(), 0);
  const rows = [...first.rows];
  let past = first.past;
  let len = prompt.length;
  let cacheMax = 0;
  for (let s = 0; s < steps; s++) {
    const step = await dec.run([tokens[s]], past, len);
    past = step.past;
    len += 1;
    rows.push(step.rows[0]);
    if (cacheCheck) {
      const full = await dec.run([...prompt, ...tokens.slice(0, s + 1)], dec.emptyPast(), 0);
      const last = full.rows[full.rows.length - 1];
      cacheMax = Math.max(cacheMax, maxDelta(step.rows[0], last, top10(last)));
    }
  }
  return { rows, cacheMax };
}

async function main() {
  const a = parseArgs(process.argv);
  const ref = JSON.parse(fs.readFileSync(a.ref, 'utf8'));
  const prompt = ref.prompt;
  const tokens = ref.greedy;
  const steps = Math.min(a.steps, tokens.length);
  const dec = await Decoder.open(a.model);
  const mine = await trace(dec, prompt, tokens, steps, a.cacheTol !== null);
  const P = prompt.length;
  const summary = { model: a.model, kv_type: dec.kvType, steps };

  // Against the float32 reference file.
  let refMax = 0, top1 = 0, greedy = 0;
  for (let p = 0; p < P; p++) {
    const r = ref.positions[p];
    const ids = r.top.map(([id]) => id);
    const want = Float64Array.from(r.top, ([, logit]) => logit - r.logsumexp);
    refMax = Math.max(refMax, Math.max(...ids.map((id, i) => Math.abs(mine.rows[p][id] - want[i]))));
    if (argmax(mine.rows[p]) === ids[0]) top1++;
  }
  // Greedy: the prediction after the prompt and after each fed token.
  const refSteps = ref.greedy_steps || [];
  for (let s = 0; s < steps; s++) {
    const row = mine.rows[P - 1 + s];
    if (argmax(row) === tokens[s]) greedy++;
    if (s < refSteps.length) {
      const r = refSteps[s];
      for (const [id, logit] of r.top) refMax = Math.max(refMax, Math.abs(row[id] - (logit - r.logsumexp)));
    }
  }
  Object.assign(summary, { prompt_top1_equal: top1, prompt_positions: P, greedy_equal: greedy, max_dlogprob_vs_ref: refMax });
  if (a.cacheTol !== null) summary.max_dlogprob_cache_vs_full = mine.cacheMax;

  let ok = true;
  if (a.against) {
    const other = await trace(await Decoder.open(a.against), prompt, tokens, steps, false);
    let m = 0, cosMin = 1, agree = 0;
    for (let i = 0; i < mine.rows.length; i++) {
      const ids = top10(other.rows[i]);
      m = Math.max(m, maxDelta(mine.rows[i], other.rows[i], ids));
      cosMin = Math.min(cosMin, cosine(mine.rows[i], other.rows[i]));
      if (argmax(mine.rows[i]) === ids[0]) agree++;
    }
    Object.assign(summary, { against: a.against, max_dlogprob_vs_against: m, min_cosine_vs_against: cosMin, top1_agree_vs_against: agree, rows: mine.rows.length });
    if (a.tol !== null && !(m <= a.tol)) ok = false;
  } else if (a.tol !== null && !(refMax <= a.tol)) {
    ok = false;
  }
  if (a.requireTop1 && top1 !== P) ok = false;
  if (a.requireGreedy && greedy !== steps) ok = false;
  if (a.cacheTol !== null && !(mine.cacheMax <= a.cacheTol)) ok = false;
  summary.ok = ok;
  const text = JSON.stringify(summary, null, 1);
  console.log(text);
  if (a.json) fs.writeFileSync(a.json, text);
  process.exit(ok ? 0 : 1);
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(2); });
