// Runs the edge handler under workerd through Miniflare 4, with KV and R2
// emulated on disk. Prints `ready <url>` on stdout once it answers, and
// runs until killed. Started by the tests and the bench with `setsid`, so
// stopping the process group stops workerd too.
//
//   node serve.mjs --persist DIR [--port N] [--token T] [--grace SECONDS]
//                  [--https-cert FILE --https-key FILE] [--fault MODE:STEP]
//                  [--read-tokens "T1\nT2"]
//
// --read-tokens sets the READ_TOKENS secret: a private feed.
//
// --fault sets the Worker's FAULT_POINT test hook (wasm/src/edge/publish.rs):
// `hang:STEP` stops every publish at STEP, `yield:STEP` makes the first one
// there wait until another has swapped the catalog pointer.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const edge = join(here, "..", "..", "edge");
const { Miniflare } = await import(join(edge, "node_modules", "miniflare", "dist", "src", "index.js"));

const { values: a } = parseArgs({
  options: {
    persist: { type: "string" },
    port: { type: "string", default: "0" },
    token: { type: "string", default: "" },
    grace: { type: "string", default: "21600" },
    "https-cert": { type: "string" },
    "https-key": { type: "string" },
    fault: { type: "string" },
    "read-tokens": { type: "string" },
  },
});
if (!a.persist) throw new Error("--persist DIR is required");

const opts = {
  host: "127.0.0.1",
  port: Number(a.port),
  cf: false,
  compatibilityDate: "2025-06-01",
  modules: [
    { type: "ESModule", path: join(edge, "src", "index.js") },
    { type: "ESModule", path: join(edge, "pkg", "ssgen_wasm.js") },
    { type: "CompiledWasm", path: join(edge, "pkg", "ssgen_wasm_bg.wasm") },
  ],
  modulesRoot: edge,
  kvNamespaces: { CATALOG: "ssgen-catalog" },
  r2Buckets: { IMAGES: "ssgen-images" },
  bindings: {
    GRACE_SECONDS: a.grace,
    ...(a.token ? { UPLOAD_TOKEN: a.token } : {}),
    ...(a.fault ? { FAULT_POINT: a.fault } : {}),
    ...(a["read-tokens"] !== undefined ? { READ_TOKENS: a["read-tokens"] } : {}),
  },
  kvPersist: join(a.persist, "kv"),
  r2Persist: join(a.persist, "r2"),
};
if (a["https-cert"]) {
  opts.https = true;
  opts.httpsCert = readFileSync(a["https-cert"], "utf8");
  opts.httpsKey = readFileSync(a["https-key"], "utf8");
}
const mf = new Miniflare(opts);
const url = await mf.ready;
process.stdout.write(`ready ${url.href.replace(/\/$/, "")}\n`);
const stop = async () => {
  await mf.dispose();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
