// Loads a GGUF model with llama.cpp (node-llama-cpp, CPU only) and generates
// a few tokens. The shared test model has random weights, so the text is
// noise: the test checks that llama.cpp accepts the file and runs it.
//
// Usage: node gguf_llama_generate.mjs MODEL.gguf [N_TOKENS]
import {getLlama} from "node-llama-cpp";

const modelPath = process.argv[2];
const want = Number(process.argv[3] ?? 8);
const llama = await getLlama({gpu: false, build: "never", logLevel: "warn"});
const model = await llama.loadModel({modelPath});
// One thread: ggml worker threads spin while waiting, which is slow on a
// busy machine and buys nothing for a model this small.
const context = await model.createContext({contextSize: 128, batchSize: 32, threads: 1});
const sequence = context.getSequence();
const prompt = model.tokenize("the a of and");
if (prompt.length === 0) throw new Error("tokenizer produced no tokens");
const out = [];
for await (const token of sequence.evaluate(prompt, {temperature: 0})) {
  out.push(token);
  if (out.length >= want) break;
}
if (out.length < want) throw new Error(`generated ${out.length} tokens, wanted ${want}`);
for (const t of out) {
  if (!Number.isInteger(t) || t < 0) throw new Error(`bad token ${t}`);
}
console.log(`llama.cpp loaded ${modelPath} and generated ${out.length} tokens: [${out.join(", ")}] ` +
            `text=${JSON.stringify(model.detokenize(out))}`);
await context.dispose();
await model.dispose();
await llama.dispose();
