// Entry glue: the handler itself is Rust (wasm/src/edge/). workerd imports
// a .wasm file as a compiled WebAssembly.Module, which initSync
// instantiates once per isolate.
import wasmModule from "../pkg/ssgen_wasm_bg.wasm";
import { initSync, handleFetch } from "../pkg/ssgen_wasm.js";

initSync({ module: wasmModule });

export default {
  async fetch(request, env) {
    try {
      return await handleFetch(request, env);
    } catch (e) {
      // Only reached if building the Response itself failed: the Rust side
      // maps every error to a status.
      return new Response(JSON.stringify({ error: `internal error: ${e}` }) + "\n", {
        status: 500,
        headers: { "content-type": "application/json" },
      });
    }
  },
};
