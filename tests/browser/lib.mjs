// Shared helpers of the browser tests: the repository paths, a static file
// server on 127.0.0.1, Debian's Chromium through playwright-core, the ssgen
// binary, and real image files made with real tools.

import { execFileSync, spawn, spawnSync } from "node:child_process";
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { createHash } from "node:crypto";
import { after, before } from "node:test";
import { chromium } from "playwright-core";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const WEB = join(REPO, "web");
export const ARTIFACTS = join(REPO, "tests/artifacts/browser");
const TARGET = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(REPO, "target");
export const SSGEN = join(TARGET, "debug/ssgen");
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

// The page must have been built (scripts/build-web.sh); build it when it
// was not, and the ssgen binary likewise.
export function ensureBuilt() {
  if (!existsSync(join(WEB, "pkg/ssgen_wasm_bg.wasm"))) {
    execFileSync(join(REPO, "scripts/build-web.sh"), { stdio: "inherit" });
  }
  if (!existsSync(SSGEN)) {
    execFileSync("cargo", ["build", "--locked", "-p", "ssgen"], { cwd: REPO, stdio: "inherit" });
  }
}

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".wasm": "application/wasm",
  ".json": "application/json",
  ".ts": "text/plain",
};

// Serves `root` on 127.0.0.1 at a port the system picks; returns {url,
// close}. `cors`: let pages of any origin read the files (as a server that
// sends Access-Control-Allow-Origin does).
export async function serve(root = WEB, { cors = false } = {}) {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    const file = normalize(join(root, path.endsWith("/") ? `${path}index.html` : path));
    if (!file.startsWith(root + sep) || !existsSync(file)) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200, {
      "content-type": TYPES[extname(file)] ?? "application/octet-stream",
      ...(cors ? { "access-control-allow-origin": "*" } : {}),
    });
    createReadStream(file).pipe(res);
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise((ok) => server.close(ok)),
  };
}

// Debian's Chromium, headless. `exposeGc`: scripts (and the page's
// workers) get `gc()`, for tests that force garbage collections.
export function launch({ exposeGc = false } = {}) {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-dev-shm-usage",
      ...(exposeGc ? ["--js-flags=--expose-gc"] : []),
    ],
  });
}

// What a test file of the page needs: before its tests, the page built, a
// static server of web/ and a browser (see launch for `options`); after
// them, both closed and the temp directories removed. Returns {server,
// browser}, filled in once the tests start.
export function useBrowser(options = {}) {
  const suite = { server: null, browser: null };
  before(async () => {
    ensureBuilt();
    mkdirSync(ARTIFACTS, { recursive: true });
    suite.server = await serve();
    suite.browser = await launch(options);
  });
  after(async () => {
    await suite.browser?.close();
    await suite.server?.close();
    removeTemps();
  });
  return suite;
}

// A page that fails the test on any console error, page error or request
// that leaves 127.0.0.1.
export async function openPage(browser, url) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console error: ${m.text()}`);
  });
  page.on("request", (r) => {
    const u = new URL(r.url());
    if (!["127.0.0.1", ""].includes(u.hostname) && u.protocol !== "blob:" && u.protocol !== "data:") {
      problems.push(`request off the machine: ${r.url()}`);
    }
  });
  await page.goto(url);
  await page.waitForSelector('body[data-state="ready"]', { timeout: 30_000 });
  return { page, problems };
}

// Waits for the page to finish; fails with the page's own message on error.
// `run`: wait for that run (the page numbers each drop or choice from 1 in
// <body data-run>), not an earlier one that is already done.
export async function waitDone(page, timeout = 60_000, run = null) {
  const at = run === null ? "" : `[data-run="${run}"]`;
  await page.waitForSelector(`body${at}[data-state="done"], body${at}[data-state="error"]`, { timeout });
  const state = await page.getAttribute("body", "data-state");
  if (state === "error") {
    throw new Error(`the page reports an error: ${await page.textContent("#error")}`);
  }
}

// Drops files or folders on the page through the browser's own drag and
// drop (the page walks a folder with webkitGetAsEntry).
export async function dropPaths(page, paths) {
  const cdp = await page.context().newCDPSession(page);
  const box = await page.locator("#drop").boundingBox();
  const at = { x: box.x + box.width / 2, y: box.y + box.height / 2 };
  const data = { items: [], files: paths, dragOperationsMask: 1 };
  for (const type of ["dragEnter", "dragOver", "drop"]) {
    await cdp.send("Input.dispatchDragEvent", { type, ...at, data });
  }
  await cdp.detach();
}

// Forces a garbage collection in each of the page's workers every few
// milliseconds until the returned function is called (needs a browser from
// launch({exposeGc: true})). A collection lands while a worker awaits a
// read, which is when an object only that read refers to can be lost.
export function forceCollections(page, everyMs = 5) {
  let on = true;
  const loop = (async () => {
    while (on) {
      await Promise.all(page.workers().map((w) => w.evaluate(() => globalThis.gc()).catch(() => {})));
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return async () => {
    on = false;
    await loop;
  };
}

const temps = [];

// A fresh directory under the system temp dir, removed by removeTemps().
export function tempDir(name) {
  const dir = mkdtempSync(join(tmpdir(), `ssgen-${name}-`));
  temps.push(dir);
  return dir;
}

export function removeTemps() {
  for (const dir of temps.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 64 << 20, ...opts });
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  }
  return r.stdout;
}

export function sha256File(path) {
  return new Promise((ok, fail) => {
    const h = createHash("sha256");
    createReadStream(path, { highWaterMark: 4 << 20 })
      .on("data", (d) => h.update(d))
      .on("end", () => ok(h.digest("hex")))
      .on("error", fail);
  });
}

// A real metadata tarball (tar + xz or gzip) holding metadata.yaml and a
// template, as distrobuilder writes them.
export function metadataTarball(path, { arch = "x86_64", created, os, release, variant = "default", serial, compress = "xz" }) {
  const dir = tempDir("meta");
  writeFileSync(
    join(dir, "metadata.yaml"),
    [
      `architecture: ${arch}`,
      `creation_date: ${created}`,
      "properties:",
      `  architecture: ${arch}`,
      `  description: ${os} ${release} ${arch} (${serial})`,
      `  os: ${os}`,
      `  release: "${release}"`,
      `  serial: "${serial}"`,
      `  variant: ${variant}`,
      "templates:",
      "  /etc/hostname:",
      "    when: [create, copy]",
      "    template: hostname.tpl",
      "",
    ].join("\n"),
  );
  mkdirSync(join(dir, "templates"));
  writeFileSync(join(dir, "templates/hostname.tpl"), "{{ container.name }}\n");
  mkdirSync(dirname(path), { recursive: true });
  run("tar", [compress === "xz" ? "-cJf" : "-czf", path, "-C", dir, "metadata.yaml", "templates"]);
}

// A real squashfs of a tiny root filesystem.
export function squashfs(path, marker) {
  const dir = tempDir("rootfs");
  mkdirSync(join(dir, "etc"), { recursive: true });
  writeFileSync(join(dir, "etc/os-release"), `NAME=${marker}\n`);
  writeFileSync(join(dir, "etc/payload"), Buffer.alloc(300_000, marker));
  mkdirSync(dirname(path), { recursive: true });
  run("mksquashfs", [dir, path, "-noappend", "-quiet", "-all-root", "-mkfs-time", "0", "-no-progress"]);
}

// A real qcow2 disk (empty, small) of `size`, e.g. "64M".
export function qcow2(path, size, preallocation = "off") {
  mkdirSync(dirname(path), { recursive: true });
  run("qemu-img", ["create", "-q", "-f", "qcow2", "-o", `preallocation=${preallocation}`, path, size]);
}

// What `ssgen build` makes of a tree: images.json from --dry-run (which
// writes nothing), then index.json from a real build into a copy. Without
// deltas: the page lists the deltas it finds but makes none, and a dry run
// makes none either.
export function ssgenBuild(root, timestamp, flags = []) {
  flags = ["--deltas", "0", ...flags];
  const imagesJson = run(SSGEN, ["build", "--dry-run", "--timestamp", String(timestamp), ...flags, root]);
  const copy = tempDir("built");
  run("cp", ["-a", join(root, "images"), copy]);
  run(SSGEN, ["build", "--timestamp", String(timestamp), ...flags, copy]);
  const written = readFileSync(join(copy, "streams/v1/images.json"), "utf8");
  if (written !== imagesJson) throw new Error("ssgen build --dry-run and ssgen build disagree on images.json");
  return { imagesJson, indexJson: readFileSync(join(copy, "streams/v1/index.json"), "utf8") };
}

// `ssgen serve DIR` on plain HTTP at 127.0.0.1, on a port it picks itself
// and names on its first line of output; returns {url, close}.
export async function ssgenServe(dir) {
  const child = spawn(SSGEN, ["serve", dir, "--plain", "--listen", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const url = await new Promise((ok, fail) => {
    let stdout = "";
    const timer = setTimeout(() => fail(new Error(`ssgen serve named no address within 15 s: ${stderr}`)), 15_000);
    child.stdout.on("data", (d) => {
      stdout += d;
      const m = /^serving .* at (http:\/\/127\.0\.0\.1:\d+)$/m.exec(stdout);
      if (m) {
        clearTimeout(timer);
        ok(`${m[1]}/`);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`ssgen serve exited (${code}) before serving: ${stderr}`));
    });
  }).catch((e) => {
    child.kill();
    throw e;
  });
  // Nothing more is read from stdout: keep it drained.
  child.stdout.resume();
  return {
    url,
    close: () =>
      new Promise((ok) => {
        if (child.exitCode !== null) return ok();
        child.once("exit", ok);
        child.kill();
      }),
  };
}
