// The token ids llama.cpp (node-llama-cpp's prebuilt library) gives a text with a GGUF model's
// vocabulary: no bos added, added (special) tokens matched in the text, as Hugging Face and `qprune` do.
// Usage: node llama_tokenize.mjs MODEL.gguf TEXT_FILE   -> one JSON array of ids on stdout
import {readFileSync} from "node:fs";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const [modelPath, textPath] = process.argv.slice(2);
if (!modelPath || !textPath) {
  console.error("usage: node llama_tokenize.mjs MODEL.gguf TEXT_FILE");
  process.exit(2);
}
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath, vocabOnly: true});
console.log(JSON.stringify(Array.from(model.tokenize(readFileSync(textPath, "utf8"), true))));
await model.dispose();
await llama.dispose();
