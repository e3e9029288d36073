// Tokens per second of a GGUF model under llama.cpp (the prebuilt CPU library that node-llama-cpp
// ships), by phase, in the manner of llama-bench's pp/tg tests:
//   prompt processing (pp): PROMPT tokens evaluated as one batch from an empty context, the last
//     token's logits requested (what a chat turn does before its first output token);
//   generation (tg): GEN tokens evaluated one at a time from an empty context, each call a decode
//     of one token with its logits copied out (what each output token costs; the tokens are given,
//     not sampled, so every model decodes the same sequence; node-llama-cpp still runs its
//     sampling worker to return the logits, a fixed per-token cost included in the figure).
// The tokens are fixed pseudo-random ids below --vocab (the models here have 256 tokens and no
// special ones). One warm-up pass of each phase first (weights paged in, buffers allocated), then
// REPS timed passes; the median pass is reported. Threads are fixed (--threads, default 2: the
// machine's core count), with min = ideal so node-llama-cpp never runs a pass on fewer.
// Usage (from any directory; node_modules is resolved from tests/clients):
//   node bench/llama_speed.mjs MODEL.gguf [--prompt 512] [--gen 128] [--threads 2] [--reps 3]
//        [--vocab 256]
// Prints one JSON line: {model, threads, prompt_tokens, gen_tokens, pp_tok_s, tg_tok_s, pp_s, tg_s,
//   pp_runs_s, tg_runs_s, llama_cpp}.
import {createRequire} from "node:module";
import {dirname, join, resolve} from "node:path";
import {fileURLToPath, pathToFileURL} from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, "..", "tests", "clients", "package.json"));
const llamaModule = pathToFileURL(require.resolve("node-llama-cpp")).href;
const {getLlama, LlamaLogLevel} = await import(llamaModule);

const args = process.argv.slice(2);
const modelPath =
    args.find((a, i) => !a.startsWith("--") && (i === 0 || !args[i - 1].startsWith("--")));
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
if (!modelPath) {
  console.error("usage: node llama_speed.mjs MODEL.gguf [--prompt N] [--gen N] [--threads N] " +
                "[--reps N] [--vocab N]");
  process.exit(2);
}
const promptTokens = opt("--prompt", 512);
const genTokens = opt("--gen", 128);
const threads = opt("--threads", 2);
const reps = opt("--reps", 3);
const vocab = opt("--vocab", 256);

// Fixed token ids (a 32-bit LCG), the same for every model.
let state = 12345;
const nextId = () => {
  state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
  return state % vocab;
};
const prompt = Array.from({length: promptTokens}, nextId);
const gen = Array.from({length: genTokens}, nextId);

const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error,
                              maxThreads: threads});
const model = await llama.loadModel({modelPath: resolve(modelPath)});
const ctx = await model.createContext({
  contextSize: Math.max(promptTokens, genTokens) + 16,
  batchSize: promptTokens,
  sequences: 1,
  threads: {ideal: threads, min: threads},
});
const seq = ctx.getSequence();

async function promptPass() {
  await seq.clearHistory();
  const items =
      prompt.map((t, i) => (i + 1 === prompt.length ? [t, {generateNext: {logits: true}}] : t));
  const t0 = process.hrtime.bigint();
  await seq.controlledEvaluate(items);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}
async function genPass() {
  await seq.clearHistory();
  const t0 = process.hrtime.bigint();
  for (const t of gen) await seq.controlledEvaluate([[t, {generateNext: {logits: true}}]]);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

await promptPass();  // warm-up
await genPass();
const ppRuns = [];
const tgRuns = [];
for (let r = 0; r < reps; ++r) {
  ppRuns.push(await promptPass());
  tgRuns.push(await genPass());
}
const ppS = median(ppRuns);
const tgS = median(tgRuns);
console.log(JSON.stringify({
  model: modelPath, threads: ctx.currentThreads, prompt_tokens: promptTokens, gen_tokens: genTokens,
  pp_tok_s: promptTokens / ppS, tg_tok_s: genTokens / tgS, pp_s: ppS, tg_s: tgS,
  pp_runs_s: ppRuns, tg_runs_s: tgRuns, llama_cpp: llama.llamaCppRelease?.release ?? null,
}));
await ctx.dispose();
await model.dispose();
await llama.dispose();
