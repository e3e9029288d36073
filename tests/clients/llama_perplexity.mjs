// Perplexity of a GGUF model under llama.cpp (the prebuilt library node-llama-cpp ships), with the
// windows of `qprune perplexity`: windows of CONTEXT tokens overlapping by one token (window k
// starts at k * (CONTEXT - 1)), every token but the first scored once from the raw logits
// (log-softmax in double precision here, no sampling options).
// Usage: node llama_perplexity.mjs MODEL.gguf TOKEN_IDS_FILE CONTEXT [MAX_TOKENS]
// Prints one JSON line: {"num_predicted", "total_nll", "mean_nll", "perplexity"}.
import {readFileSync} from "node:fs";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const [modelPath, idsPath, contextArg, maxArg] = process.argv.slice(2);
if (!modelPath || !idsPath || !contextArg) {
  console.error("usage: node llama_perplexity.mjs MODEL.gguf TOKEN_IDS_FILE CONTEXT [MAX_TOKENS]");
  process.exit(2);
}
const context = Number(contextArg);
let tokens = readFileSync(idsPath, "utf8").trim().split(/\s+/).map(Number);
if (maxArg && Number(maxArg) > 0) tokens = tokens.slice(0, Number(maxArg));

const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath});
const ctx = await model.createContext({contextSize: context, batchSize: context, sequences: 1});
const seq = ctx.getSequence();

let total = 0;
let predicted = 0;
for (let start = 0; start + 1 < tokens.length; start += context - 1) {
  const win = tokens.slice(start, start + context);
  await seq.clearHistory();
  const items = win.map((t, i) => (i + 1 < win.length ? [t, {generateNext: {logits: true}}] : t));
  const out = await seq.controlledEvaluate(items);
  for (let i = 0; i + 1 < win.length; ++i) {
    const logits = out[i].next.logits;
    let max = -Infinity;
    for (const v of logits.values()) max = Math.max(max, v);
    let sum = 0;
    for (const v of logits.values()) sum += Math.exp(v - max);
    total += max + Math.log(sum) - logits.get(win[i + 1]);
    ++predicted;
  }
}
const mean = total / predicted;
console.log(JSON.stringify({num_predicted: predicted, total_nll: total, mean_nll: mean,
                            perplexity: Math.exp(mean)}));
await model.dispose();
await llama.dispose();
