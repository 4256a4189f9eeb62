// Writes llama.cpp's next-token log-probabilities at every prompt position of
// a GGUF model as raw little-endian float32 [positions, vocab] (node-llama-cpp,
// CPU, F32 KV cache, flash attention off, one thread: the settings of
// gguf_llama_logits.mjs, under which llama.cpp reproduces the reference
// forward pass to about 1e-4). The prompt is the "prompt" token list of a
// reference file (../shared/testdata/hf/ref/<name>.ref.json). Tokens
// llama.cpp gives no probability (or zero) are written as -Infinity.
//
// Usage: node gguf_llama_prompt_logprobs.mjs MODEL.gguf REF.json OUT.f32
//        node gguf_llama_prompt_logprobs.mjs MODEL.gguf REF.json OUT.json
// With a .json output, writes a reference file of the same form instead
// ({"prompt", "positions": [{"top": [[id, log-prob] x 10], "logsumexp": 0}],
// "greedy": []}), so another runtime can be checked against llama.cpp with
// the tools that read reference files.
import fs from "node:fs";
import {getLlama} from "node-llama-cpp";

const [modelPath, refPath, outPath] = process.argv.slice(2, 5);
const prompt = JSON.parse(fs.readFileSync(refPath, "utf8")).prompt;

const llama = await getLlama({gpu: false, build: "never", logLevel: "warn"});
const model = await llama.loadModel({modelPath});
const context = await model.createContext({
  contextSize: 256, batchSize: 64, threads: 1,
  experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32", flashAttention: false,
});
const sequence = context.getSequence();
const vocab = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
const out = await sequence.controlledEvaluate(
    prompt.map((token) => [token, {generateNext: {probabilities: true}}]));
const logprobs = new Float32Array(prompt.length * vocab).fill(-Infinity);
for (let i = 0; i < prompt.length; ++i) {
  const probabilities = out[i]?.next?.probabilities;
  if (!(probabilities instanceof Map) || probabilities.size === 0) {
    throw new Error(`prompt position ${i}: llama.cpp returned no probabilities`);
  }
  for (const [id, p] of probabilities) {
    if (id >= vocab) throw new Error(`prompt position ${i}: token ${id} outside the vocabulary`);
    logprobs[i * vocab + id] = Math.log(p);
  }
}
if (outPath.endsWith(".json")) {
  const positions = [];
  for (let i = 0; i < prompt.length; ++i) {
    const row = logprobs.subarray(i * vocab, (i + 1) * vocab);
    const ids = Array.from(row.keys()).sort((a, b) => row[b] - row[a]).slice(0, 10);
    positions.push({top: ids.map((id) => [id, row[id]]), logsumexp: 0});
  }
  fs.writeFileSync(outPath, JSON.stringify({prompt, positions, greedy: []}));
} else {
  fs.writeFileSync(outPath, Buffer.from(logprobs.buffer));
}
console.log(`${modelPath}: ${prompt.length} positions x ${vocab} log-probs -> ${outPath}`);
await context.dispose();
await model.dispose();
await llama.dispose();
