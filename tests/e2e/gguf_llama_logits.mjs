// Checks llama.cpp's forward pass on a GGUF model against a reference
// forward pass (../shared/testdata/hf/ref/<name>.ref.json): node-llama-cpp,
// CPU, F32 KV cache, flash attention off, one thread. (With flash attention,
// which node-llama-cpp enables by default where it can, the CPU kernel works
// partly in F16 and log-probs move by about 1e-2 on the shared checkpoints;
// without it they agree with the reference to about 1e-4.)
//
// The reference holds, for each prompt position and each of 16 greedy decode
// steps, the top-10 token ids with their logits and the logsumexp over the
// vocabulary. For every one of those distributions this script asks llama.cpp
// for the full next-token probabilities (controlledEvaluate with
// generateNext.probabilities), and requires:
//   * the same top-1 token at every prompt position,
//   * the same 16 greedy tokens,
//   * |log p_llama(id) - (logit_ref(id) - logsumexp_ref)| <= MAX_DELTA for
//     every id of the reference top-10, at every prompt position and greedy
//     step.
//
// Usage: node gguf_llama_logits.mjs MODEL.gguf REF.json [MAX_DELTA=1e-3]
import fs from "node:fs";
import {getLlama} from "node-llama-cpp";

const [modelPath, refPath] = process.argv.slice(2, 4);
const maxDelta = Number(process.argv[4] ?? 1e-3);
const ref = JSON.parse(fs.readFileSync(refPath, "utf8"));

const llama = await getLlama({gpu: false, build: "never", logLevel: "warn"});
const model = await llama.loadModel({modelPath});
const context = await model.createContext({
  contextSize: 256, batchSize: 64, threads: 1,
  experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32", flashAttention: false,
});
const sequence = context.getSequence();

const failures = [];
let worst = 0;
// Compares one distribution (a Map token -> probability, sorted high to
// low) with a reference entry {top: [[id, logit], ...], logsumexp}; returns
// llama.cpp's top-1 token.
function compare(where, probabilities, refEntry) {
  if (!(probabilities instanceof Map) || probabilities.size === 0) {
    throw new Error(`${where}: llama.cpp returned no probabilities`);
  }
  const top1 = probabilities.keys().next().value;
  for (const [id, logit] of refEntry.top) {
    const p = probabilities.get(id) ?? 0;
    const delta = Math.abs(Math.log(p) - (logit - refEntry.logsumexp));
    if (!(delta <= maxDelta)) failures.push(`${where}: token ${id} log-prob differs by ${delta}`);
    if (delta > worst || Number.isNaN(delta)) worst = delta;
  }
  return top1;
}

const withProbabilities = (token) => [token, {generateNext: {probabilities: true}}];
const prompt = ref.prompt;
if (prompt.length !== ref.positions.length) throw new Error("reference: prompt and positions differ in length");
const out = await sequence.controlledEvaluate(prompt.map(withProbabilities));
let topOk = 0;
for (let i = 0; i < prompt.length; ++i) {
  const top1 = compare(`prompt position ${i}`, out[i]?.next?.probabilities, ref.positions[i]);
  if (top1 === ref.positions[i].top[0][0]) ++topOk;
  else failures.push(`prompt position ${i}: top-1 ${top1}, reference ${ref.positions[i].top[0][0]}`);
}

// Greedy decoding: step k's distribution follows the prompt and greedy[0..k).
const greedy = [];
let probabilities = out[prompt.length - 1].next.probabilities;
for (let k = 0; k < ref.greedy.length; ++k) {
  const token = compare(`greedy step ${k}`, probabilities, ref.greedy_steps[k]);
  greedy.push(token);
  if (k + 1 < ref.greedy.length) {
    const [next] = await sequence.controlledEvaluate([withProbabilities(token)]);
    probabilities = next?.next?.probabilities;
  }
}
const greedyOk = greedy.filter((t, k) => t === ref.greedy[k]).length;
if (greedyOk !== ref.greedy.length) failures.push(`greedy [${greedy}] != reference [${ref.greedy}]`);

console.log(`${modelPath}: top-1 ${topOk}/${prompt.length} prompt positions, greedy ${greedyOk}/${ref.greedy.length}, ` +
            `largest |delta log-prob| over the reference top-10 ${worst.toExponential(3)} (limit ${maxDelta})`);
await context.dispose();
await model.dispose();
await llama.dispose();
if (failures.length > 0) {
  for (const f of failures.slice(0, 20)) console.error(`FAIL ${f}`);
  process.exit(1);
}
