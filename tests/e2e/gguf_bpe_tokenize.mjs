// Checks that llama.cpp (node-llama-cpp, CPU) tokenizes text with a GGUF's
// GPT-2 BPE vocabulary exactly as tiktoken's own encoder (js-tiktoken) does,
// and that the chat special tokens are single tokens with their ids.
//
// Usage: node gguf_bpe_tokenize.mjs MODEL.gguf cl100k_base|o200k_base SPECIAL=ID...
import {getLlama} from "node-llama-cpp";
import {getEncoding} from "js-tiktoken";

const [modelPath, encodingName, ...specials] = process.argv.slice(2);
const texts = [
  "Hello world! It's a test: numbers 1234567 and 3.14159, don't STOP.",
  "  leading spaces,\ttabs\tand\n\nnew lines\r\n  trailing   ",
  "émigré café naïve — Œuvre; Ελληνικά, русский текст, 日本語のテキスト, 한국어 😀👍",
  "def f(x):\n    return x**2 + 1  # comment\n",
];
const encoding = getEncoding(encodingName);
const llama = await getLlama({gpu: false, build: "never", logLevel: "warn"});
const model = await llama.loadModel({modelPath});
let failed = 0;
for (const text of texts) {
  const want = encoding.encode(text);
  const got = Array.from(model.tokenize(text));
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    console.error(`${JSON.stringify(text)}: llama.cpp ${JSON.stringify(got)}, tiktoken ${JSON.stringify(want)}`);
    ++failed;
  }
}
for (const spec of specials) {
  const [content, id] = [spec.slice(0, spec.lastIndexOf("=")), Number(spec.slice(spec.lastIndexOf("=") + 1))];
  const got = Array.from(model.tokenize(content, true));
  if (got.length !== 1 || got[0] !== id) {
    console.error(`${content}: llama.cpp ${JSON.stringify(got)}, want [${id}]`);
    ++failed;
  }
}
await model.dispose();
await llama.dispose();
if (failed > 0) process.exit(1);
console.log(`llama.cpp tokenizes ${texts.length} texts as ${encodingName} does and ` +
            `${specials.length} special tokens as single ids: ${modelPath}`);
