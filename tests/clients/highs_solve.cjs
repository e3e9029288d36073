// Solves an LP or free MPS file with HiGHS (the npm package `highs`: HiGHS compiled to
// WebAssembly, installed by .ci/setup into tests/clients/node_modules) and prints the objective,
// then the value of the first N columns (qprune's x variables come first), one per line.
// Usage: node highs_solve.cjs FILE N
"use strict";
const fs = require("fs");
require("highs")().then((highs) => {
  const [file, count] = [process.argv[2], Number(process.argv[3])];
  const model = highs.createModel({
    format: file.endsWith(".mps") ? "mps" : "lp",
    data: fs.readFileSync(file, "utf8"),
  });
  model.run();
  const values = model.getSolution().colValue;
  console.log(`objective ${model.getObjectiveValue()}`);
  for (let i = 0; i < count; i++) console.log(values[i] > 0.5 ? 1 : 0);
  model.dispose();
});
