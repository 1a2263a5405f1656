// A 2 GiB disk hashes correctly in the page, and the browser's memory does
// not grow with it: files are read in chunks, never whole.

import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import {
  ARTIFACTS,
  metadataTarball,
  openPage,
  qcow2,
  run,
  sha256File,
  tempDir,
  waitDone,
  useBrowser,
} from "./lib.mjs";

const SIZE = 2 * 1024 ** 3;
const MIB = 1024 * 1024;
// Chunks of 4 MiB, two in flight per worker, a few copies through the
// wasm boundary, and the renderer's own slack: far below the file's size.
const GROWTH_LIMIT = 256 * MIB;

const suite = useBrowser();

// Resident memory of every process descending from this one (the
// browser, its renderers, GPU and utility processes).
function descendantsRss() {
  const parent = new Map();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      // The command may hold spaces and parentheses: fields follow the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parent.set(Number(name), ppid);
    } catch {
      // The process ended while we looked.
    }
  }
  const ours = (pid) => {
    for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p)) {
      if (p === process.pid) return true;
    }
    return false;
  };
  let total = 0;
  for (const pid of parent.keys()) {
    if (!ours(pid)) continue;
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      if (m) total += Number(m[1]) * 1024;
    } catch {
      // Gone.
    }
  }
  return total;
}

// A tree with one 2 GiB VM disk: a real qcow2 header, then a sparse tail,
// so the file reads as 2 GiB without taking 2 GiB of disk.
function largeTree() {
  const root = tempDir("large");
  const v = join(root, "images/debian/12/amd64/default/20260801_0312");
  metadataTarball(join(v, "incus.tar.xz"), { created: 1785554000, os: "Debian", release: "12", serial: "20260801_03:12" });
  const disk = join(v, "disk.qcow2");
  qcow2(disk, "2G");
  run("truncate", ["-s", String(SIZE), disk]);
  assert.equal(statSync(disk).size, SIZE);
  return { root, disk };
}

test("a 2 GiB disk image hashes right with flat memory", async (t) => {
  const { root, disk } = largeTree();
  const expected = await sha256File(disk);

  const { page, problems } = await openPage(suite.browser, `${suite.server.url}?timestamp=1785556800`);
  const baseline = descendantsRss();
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, descendantsRss());
  }, 100);
  try {
    await page.setInputFiles('[data-testid="folder-input"]', join(root, "images"));
    await waitDone(page, 180_000);
  } finally {
    clearInterval(sampler);
  }
  const images = JSON.parse(await page.textContent('[data-testid="images-json"]'));
  const items = images.products["debian:12:amd64:default"].versions["20260801_0312"].items;
  assert.equal(items["disk-kvm.img"].sha256, expected);
  assert.equal(items["disk-kvm.img"].size, SIZE);

  const growth = peak - baseline;
  const ms = Number(await page.getAttribute("body", "data-hash-ms"));
  const rate = SIZE / (ms / 1000) / 1e6;
  t.diagnostic(`hashed 2 GiB in ${(ms / 1000).toFixed(1)} s (${rate.toFixed(0)} MB/s); browser RSS ${(baseline / MIB).toFixed(0)} MiB before, peak growth ${(growth / MIB).toFixed(0)} MiB`);
  writeFileSync(join(ARTIFACTS, "large.json"), `${JSON.stringify({ bytes: SIZE, ms, mbPerS: rate, rssBaseline: baseline, rssPeakGrowth: growth }, null, 2)}\n`);
  assert.ok(growth < GROWTH_LIMIT, `browser memory grew by ${(growth / MIB).toFixed(0)} MiB while hashing a 2 GiB file`);
  assert.deepEqual(problems, []);
  await page.close();
});

test("cancel stops hashing, and the next files are hashed", async () => {
  const { root } = largeTree();
  const { page, problems } = await openPage(suite.browser, `${suite.server.url}?timestamp=1785556800`);
  await page.setInputFiles('[data-testid="folder-input"]', join(root, "images"));
  await page.waitForFunction(() => Number(document.querySelector("#overall").value) > 0, null, { timeout: 60_000 });
  await page.click("#cancel");
  await page.waitForSelector('body[data-state="cancelled"]', { timeout: 30_000 });
  assert.equal(await page.textContent('[data-testid="images-json"]'), "");

  const small = tempDir("after-cancel");
  const v = join(small, "images/debian/12/amd64/default/20260801_0312");
  metadataTarball(join(v, "incus.tar.xz"), { created: 1785554000, os: "Debian", release: "12", serial: "s" });
  qcow2(join(v, "disk.qcow2"), "16M");
  await page.setInputFiles('[data-testid="folder-input"]', join(small, "images"));
  await waitDone(page);
  const images = JSON.parse(await page.textContent('[data-testid="images-json"]'));
  const items = images.products["debian:12:amd64:default"].versions["20260801_0312"].items;
  assert.equal(items["disk-kvm.img"].sha256, await sha256File(join(v, "disk.qcow2")));
  assert.deepEqual(problems, []);
  await page.close();
});
