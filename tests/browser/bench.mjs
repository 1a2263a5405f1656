// Benchmark (not a test): the page's wasm hasher in headless Chromium
// against native `sha2` on the same machine, in one run, interleaved, best
// of RUNS. Prints a table and writes tests/artifacts/browser/bench.json.
//
// Usage: node bench.mjs [GIB=1] [RUNS=3]
//
// - native soft:   sha2 with force-soft, the portable code the wasm build runs
// - native:        sha2 as `ssgen build` uses it (SHA-NI when the CPU has it)
// - page, 1 file:  the page hashing one GIB file end to end (one worker)
// - in hasher:     the same, counting only the time inside Hasher.update
// - page, 2 files: two GIB files at once (both workers, all cores)
// SHA-256 costs the same whatever the bytes, so the files are sparse qcow2
// disks (a real header, then zeros) that take no disk space.

import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  ARTIFACTS,
  REPO,
  ensureBuilt,
  launch,
  metadataTarball,
  openPage,
  qcow2,
  removeTemps,
  run,
  serve,
  tempDir,
  waitDone,
} from "./lib.mjs";

const gib = Number(process.argv[2] ?? 1);
const runs = Number(process.argv[3] ?? 3);
const size = Math.round(gib * 1024 ** 3);

function nativeBinaries() {
  const manifest = join(REPO, "tests/browser/bench/Cargo.toml");
  const target = join(REPO, "target/sha2-bench");
  const env = { ...process.env, CARGO_TARGET_DIR: target };
  const bin = join(target, "release/sha2-bench");
  run("cargo", ["build", "-q", "--release", "--manifest-path", manifest, "--features", "soft"], { env });
  copyFileSync(bin, `${bin}-soft`);
  run("cargo", ["build", "-q", "--release", "--manifest-path", manifest], { env });
  return { soft: `${bin}-soft`, native: bin };
}

function tree(files) {
  const root = tempDir("bench");
  const paths = [];
  for (const arch of ["amd64", "arm64"].slice(0, files)) {
    const v = join(root, `images/debian/12/${arch}/default/20260801_0312`);
    metadataTarball(join(v, "incus.tar.xz"), { created: 1785554000, os: "Debian", release: "12", serial: "s" });
    const disk = join(v, "disk.qcow2");
    qcow2(disk, "1G");
    run("truncate", ["-s", String(size), disk]);
    paths.push(disk);
  }
  return { images: join(root, "images"), disks: paths };
}

async function pageRun(browser, url, images) {
  const { page } = await openPage(browser, url);
  await page.setInputFiles('[data-testid="folder-input"]', images);
  await waitDone(page, 600_000);
  const data = await page.evaluate(() => ({ ...document.body.dataset }));
  await page.close();
  return { ms: Number(data.hashMs), busyMs: Number(data.hashBusyMs), bytes: Number(data.hashBytes) };
}

ensureBuilt();
mkdirSync(ARTIFACTS, { recursive: true });
const bins = nativeBinaries();
const one = tree(1);
const two = tree(2);
const server = await serve();
const browser = await launch();
const best = { soft: 0, native: 0, page: 0, hasher: 0, page2: 0 };
const mb = (bytes, ms) => bytes / (ms / 1000) / 1e6;
try {
  for (let i = 0; i < runs; i++) {
    const soft = JSON.parse(run(bins.soft, [one.disks[0], "1"]));
    const native = JSON.parse(run(bins.native, [one.disks[0], "1"]));
    const p1 = await pageRun(browser, server.url, one.images);
    const p2 = await pageRun(browser, server.url, two.images);
    const row = {
      soft: soft.mb_per_s,
      native: native.mb_per_s,
      page: mb(size, p1.ms),
      hasher: mb(size, p1.busyMs),
      page2: mb(2 * size, p2.ms),
    };
    console.log(`run ${i + 1}: ${Object.entries(row).map(([k, v]) => `${k} ${v.toFixed(0)} MB/s`).join(", ")}`);
    for (const k of Object.keys(best)) best[k] = Math.max(best[k], row[k]);
  }
} finally {
  await browser.close();
  await server.close();
  removeTemps();
}

const ratio = (a, b) => (a / b).toFixed(2);
const report = {
  fileBytes: size,
  runs,
  bestMbPerS: Object.fromEntries(Object.entries(best).map(([k, v]) => [k, Number(v.toFixed(1))])),
  ratios: {
    pageVsNativeSoft: Number(ratio(best.page, best.soft)),
    hasherVsNativeSoft: Number(ratio(best.hasher, best.soft)),
    pageVsNative: Number(ratio(best.page, best.native)),
    twoFilesVsOne: Number(ratio(best.page2, best.page)),
  },
};
console.log(`
best of ${runs}, ${gib} GiB per file (MB/s):
  native sha2 (SHA-NI if present)   ${best.native.toFixed(0)}
  native sha2 force-soft            ${best.soft.toFixed(0)}
  page, 1 file, end to end          ${best.page.toFixed(0)}   (${report.ratios.pageVsNativeSoft}x native soft, ${report.ratios.pageVsNative}x native)
  page, 1 file, inside the hasher   ${best.hasher.toFixed(0)}   (${report.ratios.hasherVsNativeSoft}x native soft)
  page, 2 files at once             ${best.page2.toFixed(0)}   (${report.ratios.twoFilesVsOne}x one file)`);
writeFileSync(join(ARTIFACTS, "bench.json"), `${JSON.stringify(report, null, 2)}\n`);
