// Imports the whole TypeScript compiler (typescript.js of npm `typescript` 5.x,
// 9 MB, with `export default ts;` appended by bench/peers.sh) and transpiles a
// few lines per request.
import ts from "./typescript.js";
import { TS_SOURCE } from "./common.js";
export default {
  fetch() {
    const out = ts.transpileModule(TS_SOURCE, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } });
    return new Response(out.outputText, { headers: { "content-type": "text/javascript" } });
  },
};
