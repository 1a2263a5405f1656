// Helpers for the edge suites: start the handler under workerd (Miniflare,
// in its own process group so stopping it stops workerd too), make real
// image trees (tar + xz, mksquashfs), run the ssgen binary, raw HTTP.
import { spawn, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, rmSync, cpSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO = join(HERE, "..", "..");
export const SSGEN = process.env.SSGEN_BIN ?? join(REPO, "target", "debug", "ssgen");
export const TOKEN = "test-token-0123456789";

// Every request of the suites on a connection of its own: workerd closes
// idle keep-alive connections, and a request sent on one just as it closes
// fails in the client ("other side closed") without reaching the Worker.
const { Agent, setGlobalDispatcher } = await import(join(REPO, "edge", "node_modules", "undici", "index.js"));
setGlobalDispatcher(new Agent({ pipelining: 0 }));

const temps = [];
// Edges still running when the suite's process ends (a test that failed
// before it stopped its edge): stopped with it, by their process groups.
const running = new Set();
process.on("exit", () => {
  for (const pid of running) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {}
  }
  if (process.env.SSGEN_KEEP_TEMP) return;
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

/** A scratch directory, removed when the process exits (unless SSGEN_KEEP_TEMP is set). */
export function tempDir(name) {
  const d = mkdtempSync(join(tmpdir(), `ssgen-edge-${name}-`));
  temps.push(d);
  return d;
}

export const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");

/** Starts serve.mjs under `setsid` semantics (a new session/process group). */
export async function startEdge({ persist, token = TOKEN, grace = "21600", port = 0, tls, fault, readTokens } = {}) {
  persist ??= tempDir("state");
  const args = [join(HERE, "serve.mjs"), "--persist", persist, "--port", String(port), "--grace", grace];
  if (token) args.push("--token", token);
  if (tls) args.push("--https-cert", tls.cert, "--https-key", tls.key);
  if (fault) args.push("--fault", fault);
  if (readTokens !== undefined) args.push("--read-tokens", readTokens);
  const child = spawn(process.execPath, args, { detached: true, stdio: ["ignore", "pipe", "pipe"] });
  running.add(child.pid);
  child.once("exit", () => running.delete(child.pid));
  // The edge alone must not keep this process alive, or the exit handler
  // above would never run for an edge a failed test left running.
  child.unref();
  child.stdout.unref();
  child.stderr.unref();
  let out = "";
  let err = "";
  child.stderr.on("data", (d) => (err += d));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`edge did not start: ${err}`)), 30000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/ready (\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on("exit", (code) => reject(new Error(`edge exited ${code}: ${err}`)));
  });
  const stop = async (signal = "SIGTERM") => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    try {
      process.kill(-child.pid, signal);
    } catch {}
    const t = setTimeout(() => {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
    }, 5000);
    await exited;
    clearTimeout(t);
  };
  /** Waits until the Worker's log matches `pattern`; failing after `ms`. */
  const waitLog = async (pattern, ms = 30000) => {
    const deadline = Date.now() + ms;
    while (!pattern.test(err)) {
      if (Date.now() > deadline) throw new Error(`the edge never logged ${pattern}; its log:\n${err}`);
      if (child.exitCode !== null) throw new Error(`the edge exited before logging ${pattern}: ${err}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { url, persist, stop, child, logs: () => err, waitLog };
}

/**
 * Opens the on-disk KV and R2 of a stopped edge in this process (a second
 * Miniflare on the same persist directory), to damage them on purpose.
 */
export async function withStores(persist, fn) {
  const { Miniflare } = await import(join(REPO, "edge", "node_modules", "miniflare", "dist", "src", "index.js"));
  const mf = new Miniflare({
    modules: true, script: "export default { fetch() { return new Response(null) } }",
    compatibilityDate: "2025-06-01", cf: false,
    kvNamespaces: { CATALOG: "ssgen-catalog" }, r2Buckets: { IMAGES: "ssgen-images" },
    kvPersist: join(persist, "kv"), r2Persist: join(persist, "r2"),
  });
  try {
    await mf.ready;
    return await fn({ kv: await mf.getKVNamespace("CATALOG"), r2: await mf.getR2Bucket("IMAGES") });
  } finally {
    await mf.dispose();
  }
}

const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...opts });

/**
 * Makes one real version directory: an xz metadata tarball with
 * metadata.yaml, and a squashfs root (mksquashfs) whose contents depend on
 * `seed`, or a unified gzip tarball. Returns the directory.
 */
export function makeVersion(root, { os = "debian", release = "12", arch = "amd64", variant = "default",
  version = "20260801_0312", seed = version, meta = "incus.tar.xz", unified = false } = {}) {
  const dir = join(root, "images", os, release, arch, variant, version);
  mkdirSync(dir, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), "ssgen-img-"));
  const kernelArch = { amd64: "x86_64", arm64: "aarch64", i386: "i686" }[arch] ?? arch;
  writeFileSync(join(work, "metadata.yaml"),
    `architecture: ${kernelArch}\ncreation_date: 1785556800\nproperties:\n  os: ${os}\n  release: "${release}"\n  variant: ${variant}\n  description: ${os} ${release} ${seed}\n`);
  mkdirSync(join(work, "rootfs", "etc"), { recursive: true });
  writeFileSync(join(work, "rootfs", "etc", "hostname"), `${os}-${seed}\n`);
  writeFileSync(join(work, "rootfs", "etc", "os-release"), `ID=${os}\nVERSION_ID="${release}"\n`);
  writeFileSync(join(work, "rootfs", "etc", "filler"), createHash("sha512").update(seed).digest("hex").repeat(200));
  const tarOpts = ["--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@1785556800"];
  if (unified) {
    sh("tar", ["-czf", join(dir, "incus_combined.tar.gz"), ...tarOpts, "-C", work, "metadata.yaml", "rootfs"]);
  } else {
    sh("tar", ["-cJf", join(dir, meta), ...tarOpts, "-C", work, "metadata.yaml"]);
    sh("mksquashfs", [join(work, "rootfs"), join(dir, "rootfs.squashfs"), "-noappend", "-quiet", "-all-root",
      "-mkfs-time", "1785556800", "-all-time", "1785556800"]);
  }
  rmSync(work, { recursive: true, force: true });
  return dir;
}

/** Runs the ssgen binary; returns { code, stdout, stderr }. */
export function ssgen(args, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(SSGEN, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    const out = [];
    let stderr = "";
    child.stdout.on("data", (d) => out.push(d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("exit", (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
  });
}

export async function push(root, url, extra = []) {
  const r = await ssgen(["push", root, "--to", url, "--token", TOKEN, ...extra]);
  if (r.code !== 0) throw new Error(`ssgen push failed (${r.code}): ${r.stderr}`);
  return r;
}

/**
 * `ssgen build` on a copy without streams/, so no old catalog is reused,
 * and without making deltas: push publishes the files of the tree as they
 * are, so the reference adds none.
 */
export async function buildImagesJson(root, timestamp) {
  const copy = tempDir("build");
  cpSync(join(root, "images"), join(copy, "images"), { recursive: true });
  const r = await ssgen(["build", copy, "--deltas", "0", "--timestamp", String(timestamp)]);
  if (r.code !== 0) throw new Error(`ssgen build failed: ${r.stderr}`);
  const images = readFileSync(join(copy, "streams", "v1", "images.json"));
  const index = readFileSync(join(copy, "streams", "v1", "index.json"));
  const dry = await ssgen(["build", copy, "--dry-run", "--deltas", "0", "--timestamp", String(timestamp)]);
  rmSync(copy, { recursive: true, force: true });
  return { images, index, dry: dry.stdout };
}

/**
 * A raw HTTP request, with the path sent exactly as given (no URL
 * normalisation), so traversal attempts reach the server as written.
 */
export function raw(base, method, path, { headers = {}, body, ca } = {}) {
  const u = new URL(base);
  const mod = u.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request({ host: u.hostname, port: u.port, method, path, headers, ca, agent: false }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

export const auth = { authorization: `Bearer ${TOKEN}` };

/** PUT one file with the headers `ssgen push` sends. */
export async function putFile(base, relPath, bytes, { sha = sha256(bytes), combined, token = TOKEN, extra = {} } = {}) {
  const headers = { "x-ssgen-sha256": sha, ...extra };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (combined) headers["x-ssgen-combined"] = combined;
  return fetch(`${base}/${relPath}`, { method: "PUT", headers, body: bytes });
}

export async function publish(base, query = "", body) {
  const r = await fetch(`${base}/publish${query}`, { method: "POST", headers: auth, body });
  return { status: r.status, json: await r.json() };
}

/**
 * What the edge holds, from every page of GET /api/v1/files: path →
 * { sha256, size, purged, removed, combined: { meta: sha256 } }.
 */
export async function edgeFiles(base) {
  const out = new Map();
  const at = (p) => out.get(p) ?? out.set(p, { combined: {} }).get(p);
  let cursor = null;
  for (let pages = 0; pages < 10000; pages++) {
    const q = cursor === null ? "" : `?cursor=${encodeURIComponent(cursor)}`;
    const r = await fetch(`${base}/api/v1/files${q}`, { headers: auth });
    if (r.status !== 200) throw new Error(`listing: ${r.status} ${await r.text()}`);
    const page = await r.json();
    for (const f of page.files) Object.assign(at(f.path), { sha256: f.sha256, size: f.size, purged: f.purged });
    for (const f of page.removed) at(f.path).removed = true;
    for (const c of page.combined) at(c.path).combined[c.meta] = c.sha256;
    if (!page.next) return out;
    cursor = page.next;
  }
  throw new Error("the listing never ended");
}

/** The versions of one product in the published images.json. */
export async function versions(base, product = "debian:12:amd64:default") {
  const doc = await (await fetch(`${base}/streams/v1/images.json`)).json();
  return Object.keys(doc.products[product]?.versions ?? {}).sort();
}

/**
 * A multipart upload driven step by step: `start()`, `parts()` (uploads
 * `bytes` in `partSize` pieces), `complete()`, each returning the raw
 * answer, so tests can interleave other requests between the steps.
 */
export function multipart(base, relPath, bytes, { sha = sha256(bytes), size = bytes.length, combined,
  partSize = 5 << 20 } = {}) {
  const url = `${base}/${relPath}`;
  let id;
  const etags = [];
  return {
    async start() {
      const headers = { ...auth, "x-ssgen-sha256": sha, "x-ssgen-size": String(size) };
      if (combined) headers["x-ssgen-combined"] = combined;
      const r = await fetch(`${url}?uploads`, { method: "POST", headers });
      const json = await r.json();
      id = json.upload_id;
      return { status: r.status, json };
    },
    get id() { return id; },
    async parts() {
      for (let n = 1, at = 0; n === 1 || at < bytes.length; n++, at += partSize) {
        const r = await fetch(`${url}?upload_id=${encodeURIComponent(id)}&part=${n}`, {
          method: "PUT", headers: auth, body: bytes.subarray(at, at + partSize) });
        if (r.status !== 200) throw new Error(`part ${n}: ${r.status} ${await r.text()}`);
        etags.push({ part: n, etag: (await r.json()).etag });
      }
    },
    async complete() {
      const r = await fetch(`${url}?upload_id=${encodeURIComponent(id)}`, {
        method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ parts: etags }) });
      return { status: r.status, json: await r.json() };
    },
  };
}

/**
 * A small HTTP proxy on 127.0.0.1 in front of `target`. `handler(req, body)`
 * may answer in the edge's place (return { status, headers, body }), stall
 * (return "stall"), or return null to forward the request as it came.
 * `seen` lists the requests in order.
 */
export async function lyingProxy(target, handler) {
  const seen = [];
  const stalled = [];
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    seen.push({ method: req.method, url: req.url });
    const lie = await handler(req, body);
    if (lie === "stall") {
      stalled.push(res);
      return;
    }
    if (lie) {
      res.writeHead(lie.status, lie.headers ?? {});
      res.end(lie.body ?? "");
      return;
    }
    const headers = { ...req.headers };
    for (const h of ["host", "connection", "keep-alive", "transfer-encoding", "content-length", "expect", "accept-encoding"]) {
      delete headers[h];
    }
    const up = await fetch(`${target}${req.url}`, {
      method: req.method, headers, body: ["GET", "HEAD"].includes(req.method) ? undefined : body });
    const out = Buffer.from(await up.arrayBuffer());
    const back = {};
    // fetch has decoded the body already.
    const hop = ["content-length", "transfer-encoding", "connection", "content-encoding"];
    up.headers.forEach((v, k) => { if (!hop.includes(k)) back[k] = v; });
    res.writeHead(up.status, back);
    res.end(out);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    seen,
    close: () => new Promise((r) => {
      for (const s of stalled) s.destroy();
      server.closeAllConnections?.();
      server.close(r);
    }),
  };
}
