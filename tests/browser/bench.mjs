// Benchmark (not a test): the page's wasm hasher in headless Chromium
// against native `sha2` on the same machine, in one run, interleaved, best
// of RUNS. Prints a table and writes tests/artifacts/browser/bench.json.
//
// Usage: [SSGEN_WEB=DIR] node bench.mjs [GIB=1] [RUNS=3]
//
// - native soft:   sha2 with force-soft, the portable code the wasm build runs
// - native:        sha2 as `ssgen build` uses it (SHA-NI when the CPU has it)
// Every rate is per byte of the file; each byte of a root file feeds two
// SHA-256 states (its own digest and the combined one with its metadata
// file), in the page as in the native bench.
// - page, 1 file:  the page hashing one GIB file end to end (one worker)
// - in hasher:     the same, counting only the time inside Hasher.update
// - page, 2 files: two GIB files at once (both workers, all cores)
// SHA-256 costs the same whatever the bytes, so the files are sparse qcow2
// disks (a real header, then zeros) that take no disk space.
//
// Each rate is given per second of wall time and per second of CPU time of
// the hashing thread (the native bench's thread; Chromium's DedicatedWorker
// threads, from /proc/<pid>/task/<tid>/schedstat): on a machine shared with
// other work, the CPU-time rates are the ones to compare.

import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
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

// Nanoseconds on CPU of every Chromium worker thread below this process.
function workerCpuNs() {
  const parent = new Map();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // Gone.
    }
  }
  let ns = 0;
  for (const pid of parent.keys()) {
    let ours = false;
    for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p)) if (p === process.pid) ours = true;
    if (!ours) continue;
    let tasks = [];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tasks) {
      try {
        if (!readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").startsWith("DedicatedWorker")) continue;
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
      } catch {
        // Gone.
      }
    }
  }
  return ns;
}

async function pageRun(browser, url, images) {
  const { page } = await openPage(browser, url);
  const cpuBefore = workerCpuNs();
  await page.setInputFiles('[data-testid="folder-input"]', images);
  await waitDone(page, 600_000);
  const cpuMs = (workerCpuNs() - cpuBefore) / 1e6;
  const data = await page.evaluate(() => ({ ...document.body.dataset }));
  await page.close();
  return { ms: Number(data.hashMs), busyMs: Number(data.hashBusyMs), cpuMs, bytes: Number(data.hashBytes) };
}

ensureBuilt();
mkdirSync(ARTIFACTS, { recursive: true });
const bins = nativeBinaries();
const one = tree(1);
const two = tree(2);
// SSGEN_WEB: another build of the page (a copy of web/ with its pkg/), to
// compare two builds in one session.
const server = await serve(process.env.SSGEN_WEB ? resolve(process.env.SSGEN_WEB) : undefined);
const browser = await launch();
const best = { soft: 0, native: 0, page: 0, hasher: 0, page2: 0, softCpu: 0, nativeCpu: 0, pageCpu: 0, page2Cpu: 0 };
const mb = (bytes, ms) => bytes / (ms / 1000) / 1e6;
try {
  for (let i = 0; i < runs; i++) {
    const soft = JSON.parse(run(bins.soft, [one.disks[0], "1", "2"]));
    const native = JSON.parse(run(bins.native, [one.disks[0], "1", "2"]));
    const p1 = await pageRun(browser, server.url, one.images);
    const p2 = await pageRun(browser, server.url, two.images);
    const row = {
      soft: soft.mb_per_s,
      native: native.mb_per_s,
      page: mb(size, p1.ms),
      hasher: mb(size, p1.busyMs),
      page2: mb(2 * size, p2.ms),
      softCpu: soft.mb_per_cpu_s,
      nativeCpu: native.mb_per_cpu_s,
      pageCpu: mb(size, p1.cpuMs),
      page2Cpu: mb(2 * size, p2.cpuMs),
    };
    const load = readFileSync("/proc/loadavg", "utf8").split(" ")[0];
    console.log(`run ${i + 1} (load ${load}): ${Object.entries(row).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(", ")} MB/s`);
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
    cpuPageVsNativeSoft: Number(ratio(best.pageCpu, best.softCpu)),
    cpuPageVsNative: Number(ratio(best.pageCpu, best.nativeCpu)),
  },
};
console.log(`
best of ${runs}, ${gib} GiB per file (MB/s):
  native sha2 (SHA-NI if present)   ${best.native.toFixed(0)}
  native sha2 force-soft            ${best.soft.toFixed(0)}
  page, 1 file, end to end          ${best.page.toFixed(0)}   (${report.ratios.pageVsNativeSoft}x native soft, ${report.ratios.pageVsNative}x native)
  page, 1 file, inside the hasher   ${best.hasher.toFixed(0)}   (${report.ratios.hasherVsNativeSoft}x native soft)
  page, 2 files at once             ${best.page2.toFixed(0)}   (${report.ratios.twoFilesVsOne}x one file)
per second of CPU time of the hashing thread(s):
  native sha2                       ${best.nativeCpu.toFixed(0)}
  native sha2 force-soft            ${best.softCpu.toFixed(0)}
  page, 1 file (worker threads)     ${best.pageCpu.toFixed(0)}   (${report.ratios.cpuPageVsNativeSoft}x native soft, ${report.ratios.cpuPageVsNative}x native)
  page, 2 files (worker threads)    ${best.page2Cpu.toFixed(0)}`);
writeFileSync(join(ARTIFACTS, "bench.json"), `${JSON.stringify(report, null, 2)}\n`);
