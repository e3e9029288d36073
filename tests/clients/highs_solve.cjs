// Solves an LP or free MPS file with HiGHS (the npm package `highs`: HiGHS compiled to
// WebAssembly, installed by .ci/setup into tests/clients/node_modules) and writes its answer as
// HiGHS's own solution file (exportSolution(): the text Highs::writeSolution writes, "Model
// status", "# Primal solution values", "Objective v", "# Columns N", "name value" lines), which
// `qprune import-solution` and `qprune energy` read.
// Usage: node highs_solve.cjs FILE OUT
"use strict";
const fs = require("fs");
require("highs")().then((highs) => {
  const [file, out] = [process.argv[2], process.argv[3]];
  const model = highs.createModel({
    format: file.endsWith(".mps") ? "mps" : "lp",
    data: fs.readFileSync(file, "utf8"),
  });
  model.run();
  fs.writeFileSync(out, model.exportSolution());
  model.dispose();
});
