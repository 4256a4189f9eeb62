// Writes a Hugging Face GPT-2-style byte-level BPE tokenizer (tokenizer.json +
// tokenizer_config.json) rebuilt from a tiktoken encoding's ranks, as shipped
// by the js-tiktoken package. Two flavours:
//   phi4       cl100k_base, Phi-4's special tokens and ChatML template
//   phi4-mini  o200k_base, Phi-4-mini's special tokens and template
// The vocabulary is each rank's bytes under the GPT-2 byte -> character map;
// the merges are derived from the ranks: a token of rank r is the merge of
// the two parts that byte-pair encoding with the ranks below r leaves of it,
// and the merges are listed in rank order. The pre-tokenizer is a Split on
// the encoding's own regex followed by ByteLevel without its own regex.
//
// Usage: node make_bpe_tokenizer.mjs phi4|phi4-mini OUT_DIR
import fs from "node:fs";
import path from "node:path";

const flavour = process.argv[2];
const outDir = process.argv[3];
if (!outDir || !["phi4", "phi4-mini"].includes(flavour)) {
  console.error("usage: node make_bpe_tokenizer.mjs phi4|phi4-mini OUT_DIR");
  process.exit(2);
}

const encoding = flavour === "phi4" ? "cl100k_base" : "o200k_base";
const ranks = (await import(`js-tiktoken/ranks/${encoding}`)).default;

// GPT-2's reversible byte -> printable character map.
function byteToChar() {
  const printable = [];
  for (let b = 33; b <= 126; ++b) printable.push(b);
  for (let b = 161; b <= 172; ++b) printable.push(b);
  for (let b = 174; b <= 255; ++b) printable.push(b);
  const map = new Array(256);
  for (const b of printable) map[b] = String.fromCodePoint(b);
  let next = 0;
  for (let b = 0; b < 256; ++b) {
    if (map[b] === undefined) map[b] = String.fromCodePoint(256 + next++);
  }
  return map;
}
const b2c = byteToChar();
const toChars = (bytes) => Array.from(bytes, (b) => b2c[b]).join("");

// js-tiktoken's packed ranks: lines of "<tag> <first rank> <base64 token>...".
const byRank = [];
for (const line of ranks.bpe_ranks.split("\n")) {
  if (!line) continue;
  const [, first, ...tokens] = line.split(" ");
  const offset = Number.parseInt(first, 10);
  tokens.forEach((t, i) => { byRank[offset + i] = Buffer.from(t, "base64"); });
}
const rankOf = new Map();
byRank.forEach((bytes, rank) => { if (bytes) rankOf.set(bytes.toString("latin1"), rank); });

// Byte-pair encodes `bytes` using only ranks below `limit`; returns the parts.
function encodeBelow(bytes, limit) {
  let parts = Array.from(bytes, (b) => String.fromCharCode(b));
  for (;;) {
    let best = -1;
    let bestRank = limit;
    for (let i = 0; i + 1 < parts.length; ++i) {
      const r = rankOf.get(parts[i] + parts[i + 1]);
      if (r !== undefined && r < bestRank) { bestRank = r; best = i; }
    }
    if (best < 0) return parts;
    parts = [...parts.slice(0, best), parts[best] + parts[best + 1], ...parts.slice(best + 2)];
  }
}

const vocab = {};
const merges = [];
byRank.forEach((bytes, rank) => {
  if (!bytes) return;
  vocab[toChars(bytes)] = rank;
  if (bytes.length < 2) return;
  const parts = encodeBelow(bytes, rank);
  if (parts.length !== 2) throw new Error(`rank ${rank} is not the merge of two tokens`);
  merges.push(parts.map((p) => toChars(Buffer.from(p, "latin1"))).join(" "));
});

// Special tokens by id: the encoding's own, then the model's chat tokens, the
// rest of the padded range as <|dummy_N|> like Phi-4's tokenizer.
const special = new Map(Object.entries(ranks.special_tokens).map(([t, id]) => [id, t]));
let vocabSize;
let config;
if (flavour === "phi4") {
  for (const [id, t] of [[100264, "<|im_start|>"], [100265, "<|im_end|>"], [100266, "<|im_sep|>"]]) {
    special.set(id, t);
  }
  vocabSize = 100352;
  config = {
    bos_token: "<|endoftext|>", eos_token: "<|im_end|>", pad_token: "<|dummy_85|>",
    unk_token: "<|endoftext|>",
    chat_template: "{% for message in messages %}{{'<|im_start|>' + message['role'] + '<|im_sep|>' + " +
                   "message['content'] + '<|im_end|>'}}{% endfor %}{% if add_generation_prompt %}" +
                   "{{'<|im_start|>assistant<|im_sep|>'}}{% endif %}",
  };
} else {
  const chat = ["<|assistant|>", "<|end|>", "<|user|>", "<|system|>", "<|tool|>", "<|/tool|>",
                "<|tool_call|>", "<|/tool_call|>", "<|tool_response|>", "<|tag|>"];
  chat.forEach((t, i) => special.set(200019 + i, t));
  vocabSize = 200029;  // config.json pads to 200064
  config = {
    bos_token: "<|endoftext|>", eos_token: "<|endoftext|>", pad_token: "<|endoftext|>",
    unk_token: "<|endoftext|>",
    chat_template: "{% for message in messages %}{{'<|' + message['role'] + '|>' + message['content'] + " +
                   "'<|end|>'}}{% endfor %}{% if add_generation_prompt %}{{'<|assistant|>'}}" +
                   "{% else %}{{eos_token}}{% endif %}",
  };
}
let dummy = 0;
const firstSpecial = byRank.length;
for (let id = firstSpecial; id < vocabSize; ++id) {
  if (!special.has(id)) special.set(id, `<|dummy_${dummy++}|>`);
}
const addedTokens = [...special.entries()].sort((a, b) => a[0] - b[0]).map(([id, content]) => ({
  id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
}));

const tokenizer = {
  version: "1.0",
  truncation: null,
  padding: null,
  added_tokens: addedTokens,
  normalizer: null,
  pre_tokenizer: {
    type: "Sequence",
    pretokenizers: [
      {type: "Split", pattern: {Regex: ranks.pat_str}, behavior: "Isolated", invert: false},
      {type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false},
    ],
  },
  post_processor: {type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true},
  decoder: {type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true},
  model: {
    type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null,
    end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false,
    vocab, merges,
  },
};
const addedDecoder = {};
for (const a of addedTokens) {
  addedDecoder[String(a.id)] = {content: a.content, lstrip: false, normalized: false, rstrip: false,
                                single_word: false, special: true};
}
const tokenizerConfig = {
  add_bos_token: false, add_eos_token: false, add_prefix_space: false,
  added_tokens_decoder: addedDecoder, clean_up_tokenization_spaces: false,
  model_max_length: flavour === "phi4" ? 16384 : 131072, tokenizer_class: "GPT2Tokenizer",
  ...config,
};

fs.mkdirSync(outDir, {recursive: true});
fs.writeFileSync(path.join(outDir, "tokenizer.json"), JSON.stringify(tokenizer));
fs.writeFileSync(path.join(outDir, "tokenizer_config.json"), JSON.stringify(tokenizerConfig, null, 2));
console.log(`${encoding}: ${byRank.length} ranks, ${merges.length} merges, ` +
            `${addedTokens.length} added tokens -> ${outDir}`);
