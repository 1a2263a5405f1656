// The page in headless Chromium: real image files through both inputs give
// byte for byte what `ssgen build` gives; a broken tarball is reported.

import assert from "node:assert/strict";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import {
  ARTIFACTS,
  WEB,
  dropPaths,
  metadataTarball,
  openPage,
  qcow2,
  run,
  SSGEN,
  serve,
  squashfs,
  ssgenBuild,
  ssgenServe,
  tempDir,
  waitDone,
  useBrowser,
} from "./lib.mjs";

const TIMESTAMP = 1785556800; // Sat, 01 Aug 2026 04:00:00 +0000
const suite = useBrowser();

const pageUrl = () => `${suite.server.url}?timestamp=${TIMESTAMP}`;

async function documents(page) {
  return {
    imagesJson: await page.textContent('[data-testid="images-json"]'),
    indexJson: await page.textContent('[data-testid="index-json"]'),
  };
}

// A tree with what a real server holds: a container and a VM sharing one
// metadata tarball, an LXD-named product with inherited requirements and a
// metadata.json, and a product the clients would hide (unknown arch).
function makeTree() {
  const root = tempDir("tree");
  const v = join(root, "images/debian/12/amd64/default/20260801_0312");
  metadataTarball(join(v, "incus.tar.xz"), { created: 1785554000, os: "Debian", release: "12", serial: "20260801_03:12" });
  squashfs(join(v, "rootfs.squashfs"), "debian");
  qcow2(join(v, "disk.qcow2"), "64M");
  writeFileSync(join(v, "SHA256SUMS"), "not read by clients\n");
  const a = join(root, "images/alpine/3.20/arm64/cloud");
  metadataTarball(join(a, "20260730_1200/lxd.tar.xz"), {
    arch: "aarch64",
    created: 1785412800,
    os: "Alpine",
    release: "3.20",
    variant: "cloud",
    serial: "20260730_12:00",
    compress: "gz",
  });
  squashfs(join(a, "20260730_1200/root.squashfs"), "alpine");
  writeFileSync(join(a, "metadata.json"), JSON.stringify({ aliases: ["alpine/latest-cloud"] }));
  writeFileSync(join(root, "images/alpine/.requirements"), JSON.stringify({ secureboot: "false", cgroup: "v1" }));
  const bad = join(root, "images/debian/12/x86-64/default/20260801_0312");
  metadataTarball(join(bad, "incus.tar.xz"), { created: 1785554000, os: "Debian", release: "12", serial: "20260801_03:12" });
  squashfs(join(bad, "rootfs.squashfs"), "other");
  return root;
}

test("a folder through the folder input gives exactly ssgen build's documents", async () => {
  const root = makeTree();
  const expected = ssgenBuild(root, TIMESTAMP);
  assert.match(expected.imagesJson, /combined_disk-kvm-img_sha256/);

  const { page, problems } = await openPage(suite.browser, pageUrl());
  await page.setInputFiles('[data-testid="folder-input"]', join(root, "images"));
  await waitDone(page);
  const got = await documents(page);
  assert.equal(got.imagesJson, expected.imagesJson);
  assert.equal(got.indexJson, expected.indexJson);

  // The product LXD and Incus would hide is reported, with the reason.
  const findings = await page.textContent("#diagnostics");
  assert.match(findings, /x86-64/);
  assert.match(findings, /unknown to LXD and Incus/);
  // Each file of the two published products has its row, finished.
  assert.equal(await page.locator("#files li.done").count(), 5);

  // One client only: rebuilt from the same digests, as `ssgen build --only`.
  await page.selectOption("#clients", "incus");
  await page.waitForFunction(() => !document.querySelector('[data-testid="images-json"]').textContent.includes('"lxd.tar.xz"'));
  await waitDone(page);
  assert.deepEqual(await documents(page), ssgenBuild(root, TIMESTAMP, ["--only", "incus"]));
  await page.screenshot({ path: join(ARTIFACTS, "folder.png"), fullPage: true });
  assert.deepEqual(problems, []);
  await page.close();
});

test("loose export files are placed from metadata.yaml, as written, and give ssgen build's documents", async () => {
  const exported = tempDir("export");
  const created = 1785556320; // 2026-08-01 03:52:00 UTC
  const meta = join(exported, "meta-0f3c.tar.xz");
  const root = join(exported, "0f3c.squashfs");
  metadataTarball(meta, { created, os: "Debian", release: "bookworm", serial: "20260801_03:52" });
  squashfs(root, "bookworm");

  const { page, problems } = await openPage(suite.browser, pageUrl());
  await page.setInputFiles('[data-testid="files-input"]', [meta, root]);
  await waitDone(page);
  const field = (name) => page.inputValue(`#loose-form [name="${name}"]`);
  assert.deepEqual(
    [await field("os"), await field("release"), await field("arch"), await field("variant"), await field("version")],
    ["Debian", "bookworm", "amd64", "default", "20260801_0352"],
  );

  // The same files where the page says they go, built by the CLI.
  const tree = tempDir("placed");
  const dir = join(tree, "images/Debian/bookworm/amd64/default/20260801_0352");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "incus.tar.xz"), readFileSync(meta));
  writeFileSync(join(dir, "rootfs.squashfs"), readFileSync(root));
  const placements = await page.textContent("#placements");
  assert.match(placements, /images\/Debian\/bookworm\/amd64\/default\/20260801_0352\/incus\.tar\.xz/);
  assert.deepEqual(await documents(page), ssgenBuild(tree, TIMESTAMP));

  // Editing the fields rebuilds without hashing again: a requirement and
  // an alias become side files that ssgen build reads the same way.
  await page.check('#loose-form [name="req:nesting"]');
  await page.fill('#loose-form [name="aliases"]', "debian/stable");
  await page.waitForFunction(() => document.querySelector('[data-testid="images-json"]').textContent.includes('"nesting"'));
  await waitDone(page);
  // The side files the page offers, byte for byte, are what the tree needs.
  const side = await page.locator("#side-files button").allTextContents();
  assert.deepEqual(side, ["images/Debian/bookworm/amd64/default/metadata.json", "images/Debian/bookworm/amd64/default/.requirements"]);
  writeFileSync(join(tree, "images/Debian/bookworm/amd64/default/.requirements"), '{\n  "nesting": "true"\n}\n');
  writeFileSync(join(tree, "images/Debian/bookworm/amd64/default/metadata.json"), '{\n  "aliases": [\n    "debian/stable"\n  ]\n}\n');
  const edited = await documents(page);
  assert.match(edited.imagesJson, /debian\/stable/);
  assert.deepEqual(edited, ssgenBuild(tree, TIMESTAMP));
  await page.screenshot({ path: join(ARTIFACTS, "loose.png"), fullPage: true });
  assert.deepEqual(problems, []);
  await page.close();
});

test("a broken metadata tarball shows a readable error", async () => {
  const exported = tempDir("broken");
  const meta = join(exported, "meta.tar.xz");
  metadataTarball(meta, { created: 1785556320, os: "Debian", release: "12", serial: "x" });
  const whole = readFileSync(meta);
  writeFileSync(meta, whole.subarray(0, Math.floor(whole.length / 2)));
  const root = join(exported, "root.squashfs");
  squashfs(root, "broken");

  const { page } = await openPage(suite.browser, pageUrl());
  await page.setInputFiles('[data-testid="files-input"]', [meta, root]);
  await page.waitForSelector('body[data-state="error"]', { timeout: 30_000 });
  const message = await page.textContent("#error");
  assert.match(message, /meta\.tar\.xz/);
  assert.match(message, /truncated|corrupt/);
  assert.equal(await page.isVisible("#error"), true);
  assert.equal(await page.textContent('[data-testid="images-json"]'), "");
  await page.screenshot({ path: join(ARTIFACTS, "broken.png"), fullPage: true });
  await page.close();
});

// What `ssgen build` says when it refuses a tree: the message of its one
// error, with the root's path taken out (the page names paths from it).
function buildRefusal(root) {
  const r = spawnSync(SSGEN, ["build", "--deltas", "0", "--timestamp", String(TIMESTAMP), root], { encoding: "utf8" });
  assert.notEqual(r.status, 0, `ssgen build accepted ${root}`);
  const m = /^error: (.*)$/m.exec(r.stderr);
  assert.ok(m, r.stderr);
  return m[1].replaceAll(`${root}/`, "");
}

test("a tree with a metadata tarball the daemons would refuse is refused by name, as ssgen build refuses it", async () => {
  const { page, problems } = await openPage(suite.browser, pageUrl());
  const cases = [
    // A valid xz tarball without metadata.yaml.
    ["no metadata.yaml", /has no metadata\.yaml/, (dir) => {
      const src = tempDir("no-yaml");
      mkdirSync(join(src, "templates"));
      writeFileSync(join(src, "templates/hostname.tpl"), "{{ container.name }}\n");
      run("tar", ["-cJf", join(dir, "incus.tar.xz"), "-C", src, "templates"]);
    }],
    // A metadata.yaml without the creation date the daemons require.
    ["no creation_date", /creation_date/, (dir) => {
      const src = tempDir("no-date");
      writeFileSync(join(src, "metadata.yaml"), "architecture: x86_64\nproperties:\n  os: debian\n");
      run("tar", ["-cJf", join(dir, "incus.tar.xz"), "-C", src, "metadata.yaml"]);
    }],
  ];
  let runNumber = 0;
  for (const [what, says, make] of cases) {
    const root = makeTree();
    // Beside a good version: the one bad tarball refuses the whole build.
    const dir = join(root, "images/debian/12/amd64/default/20260802_0312");
    mkdirSync(dir, { recursive: true });
    make(dir);
    squashfs(join(dir, "rootfs.squashfs"), "refused");
    const expected = buildRefusal(root);
    assert.match(expected, says, what);
    assert.ok(expected.startsWith("images/debian/12/amd64/default/20260802_0312/incus.tar.xz: "), expected);

    await page.setInputFiles('[data-testid="folder-input"]', join(root, "images"));
    runNumber += 1;
    await page.waitForSelector(`body[data-run="${runNumber}"][data-state="error"], body[data-run="${runNumber}"][data-state="done"]`, { timeout: 60_000 });
    assert.equal(await page.getAttribute("body", "data-state"), "error", `${what}: the page refuses the tree`);
    assert.equal(await page.textContent("#error"), expected, what);
    assert.equal(await page.isVisible("#output"), false);
  }
  await page.screenshot({ path: join(ARTIFACTS, "refused.png"), fullPage: true });
  assert.deepEqual(problems, []);
  await page.close();
});

test("a tree with a delta lists it and gives ssgen build --deltas 0's documents, delta included", async () => {
  const root = tempDir("deltas");
  const product = join(root, "images/debian/12/amd64/default");
  const base = join(product, "20260731_0312");
  const target = join(product, "20260801_0312");
  metadataTarball(join(base, "incus.tar.xz"), { created: 1785467520, os: "debian", release: "12", serial: "20260731_03:12" });
  squashfs(join(base, "rootfs.squashfs"), "debian-1");
  metadataTarball(join(target, "incus.tar.xz"), { created: 1785553920, os: "debian", release: "12", serial: "20260801_03:12" });
  squashfs(join(target, "rootfs.squashfs"), "debian-2");
  // A real VCDIFF delta from the base's root to the target's.
  const delta = join(target, "delta-20260731_0312.vcdiff");
  run("xdelta3", ["-e", "-S", "none", "-f", "-s", join(base, "rootfs.squashfs"), join(target, "rootfs.squashfs"), delta]);
  const expected = ssgenBuild(root, TIMESTAMP);
  const item = JSON.parse(expected.imagesJson).products["debian:12:amd64:default"].versions["20260801_0312"].items;
  const published = Object.values(item).find((i) => i.path.endsWith("/delta-20260731_0312.vcdiff"));
  assert.equal(published?.delta_base, "20260731_0312", "ssgen build --deltas 0 keeps the delta on disk");

  const { page, problems } = await openPage(suite.browser, pageUrl());
  await page.setInputFiles('[data-testid="folder-input"]', join(root, "images"));
  await waitDone(page);
  assert.deepEqual(await documents(page), expected);
  assert.equal(await page.isVisible("#deltas"), true);
  const rows = await page.locator("#deltas-table tbody tr").evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
  const size = statSync(delta).size;
  assert.deepEqual(
    rows.map((r) => r.slice(0, 3)),
    [["debian:12:amd64:default", "20260801_0312", "20260731_0312"]],
  );
  assert.match(rows[0][3], /^\d+(\.\d)? (B|KB|MB)$/);
  assert.equal(
    await page.getAttribute("#deltas-table tbody td:last-child", "title"),
    `images/debian/12/amd64/default/20260801_0312/delta-20260731_0312.vcdiff, ${size} bytes`,
  );
  await page.screenshot({ path: join(ARTIFACTS, "deltas.png"), fullPage: true });
  assert.deepEqual(problems, []);
  await page.close();
});

test("once loaded, the page works with its server gone", async () => {
  const root = makeTree();
  const expected = ssgenBuild(root, TIMESTAMP);
  const own = await serve();
  const { page, problems } = await openPage(suite.browser, `${own.url}?timestamp=${TIMESTAMP}`);
  await own.close();
  await page.setInputFiles('[data-testid="folder-input"]', join(root, "images"));
  await waitDone(page);
  assert.deepEqual(await documents(page), expected);
  assert.deepEqual(problems, []);
  await page.close();
});

test("served by ssgen serve, the page gives the same documents", async () => {
  const root = makeTree();
  const expected = ssgenBuild(root, TIMESTAMP);
  const served = await ssgenServe(WEB);
  try {
    const { page, problems } = await openPage(suite.browser, `${served.url}?timestamp=${TIMESTAMP}`);
    await page.setInputFiles('[data-testid="folder-input"]', join(root, "images"));
    await waitDone(page);
    assert.deepEqual(await documents(page), expected);
    assert.deepEqual(problems, []);
    await page.close();
  } finally {
    await served.close();
  }
});

test("export files dropped on the page are placed like chosen ones", async () => {
  const exported = tempDir("drop");
  const meta = join(exported, "a1b2.tar.gz");
  const root = join(exported, "a1b2.squashfs");
  // 2026-07-31 22:05 UTC, a gzip metadata tarball and an aarch64 image.
  metadataTarball(meta, { arch: "aarch64", created: 1785535500, os: "Alpine", release: "3.20", variant: "cloud", serial: "x", compress: "gz" });
  squashfs(root, "alpine");

  const { page, problems } = await openPage(suite.browser, pageUrl());
  const files = [meta, root].map((p) => ({ name: basename(p), base64: readFileSync(p).toString("base64") }));
  await page.evaluate((files) => {
    const dt = new DataTransfer();
    for (const f of files) {
      const bytes = Uint8Array.from(atob(f.base64), (c) => c.charCodeAt(0));
      dt.items.add(new File([bytes], f.name));
    }
    const drop = document.querySelector("#drop");
    for (const type of ["dragover", "drop"]) {
      drop.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
    }
  }, files);
  await waitDone(page);
  const tree = tempDir("dropped");
  const dir = join(tree, "images/Alpine/3.20/arm64/cloud/20260731_2205");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "incus.tar.xz"), readFileSync(meta));
  writeFileSync(join(dir, "rootfs.squashfs"), readFileSync(root));
  assert.deepEqual(await documents(page), ssgenBuild(tree, TIMESTAMP));
  // The progress rows name the user's files, not where they are staged.
  assert.deepEqual(await page.locator("#files li span:first-child").allTextContents(), ["a1b2.tar.gz", "a1b2.squashfs"]);
  assert.deepEqual(problems, []);
  await page.close();
});

test("a server root dropped on the page is walked, and its published catalog kept when unchanged", async () => {
  const root = makeTree();
  // Published an hour ago: the page, an hour later, changes nothing, so it
  // keeps the published `updated` and gives the very same bytes.
  run(SSGEN, ["build", "--timestamp", String(TIMESTAMP - 3600), root]);
  const expected = {
    imagesJson: readFileSync(join(root, "streams/v1/images.json"), "utf8"),
    indexJson: readFileSync(join(root, "streams/v1/index.json"), "utf8"),
  };
  assert.match(expected.indexJson, /03:00:00 \+0000/);
  const { page, problems } = await openPage(suite.browser, pageUrl());
  // A real drag of the server root (the folder holding images/), through the
  // browser's own drag and drop: the page walks it with webkitGetAsEntry.
  await dropPaths(page, [root]);
  await waitDone(page);
  assert.deepEqual(await documents(page), expected);
  // The header names the time the documents keep, and why.
  assert.equal(await page.textContent("#timestamp-note"), "updated: Sat, 01 Aug 2026 03:00:00 +0000 (kept from the published images.json: nothing else changed)");
  assert.deepEqual(problems, []);
  await page.close();
});

test("without ?timestamp, the header names the very time the documents carry", async () => {
  const root = makeTree();
  const { page, problems } = await openPage(suite.browser, suite.server.url);
  assert.match(await page.textContent("#timestamp-note"), /\(now\)/);
  await page.setInputFiles('[data-testid="folder-input"]', join(root, "images"));
  await waitDone(page);
  const { updated } = JSON.parse(await page.textContent('[data-testid="images-json"]'));
  assert.match(updated, /^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000$/);
  assert.equal(JSON.parse(await page.textContent('[data-testid="index-json"]')).updated, updated);
  assert.equal(await page.textContent("#timestamp-note"), `updated: ${updated} (now)`);
  assert.deepEqual(problems, []);
  await page.close();
});

test("the summary counts the findings it sits above", async () => {
  const root = tempDir("findings");
  const v = join(root, "images/debian/12/amd64/default");
  metadataTarball(join(v, "20260801_0312/incus.tar.xz"), { created: 1785554000, os: "Debian", release: "12", serial: "a" });
  squashfs(join(v, "20260801_0312/rootfs.squashfs"), "debian");
  // Three warnings (a product the clients would hide, a version without its
  // root file, a version name they would hide) and one note (a stray file).
  const hidden = join(root, "images/debian/12/x86-64/default/20260801_0312");
  metadataTarball(join(hidden, "incus.tar.xz"), { created: 1785554000, os: "Debian", release: "12", serial: "b" });
  squashfs(join(hidden, "rootfs.squashfs"), "other");
  metadataTarball(join(v, "20260802_0312/incus.tar.xz"), { created: 1785554001, os: "Debian", release: "12", serial: "c" });
  metadataTarball(join(v, "latest/incus.tar.xz"), { created: 1785554002, os: "Debian", release: "12", serial: "d" });
  writeFileSync(join(root, "images/README.txt"), "notes\n");

  const { page, problems } = await openPage(suite.browser, pageUrl());
  await page.setInputFiles('[data-testid="folder-input"]', join(root, "images"));
  await waitDone(page);
  assert.deepEqual(await documents(page), ssgenBuild(root, TIMESTAMP));
  const cards = async (level) => page.locator(`#diagnostics li.${level}`).count();
  assert.deepEqual([await cards("error"), await cards("warning"), await cards("note")], [0, 3, 1]);
  assert.equal(
    await page.textContent("#summary"),
    "1 product(s), 1 image(s) per client. Findings: 3 warnings, 1 note " +
      "(about the files: 3 warnings, 1 note; what LXD and Incus make of the catalog: none).",
  );
  assert.deepEqual(problems, []);
  await page.close();
});

// A server root as ssgen publishes it: an older version of the product
// an export adds to, and another product.
function makeServer() {
  const root = tempDir("server");
  const old = join(root, "images/debian/bookworm/amd64/default/20260731_0352");
  metadataTarball(join(old, "incus.tar.xz"), { created: 1785469920, os: "Debian", release: "bookworm", serial: "20260731_03:52" });
  squashfs(join(old, "rootfs.squashfs"), "bookworm-old");
  const a = join(root, "images/alpine/3.20/arm64/cloud/20260730_1200");
  metadataTarball(join(a, "lxd.tar.xz"), { arch: "aarch64", created: 1785412800, os: "Alpine", release: "3.20", variant: "cloud", serial: "s", compress: "gz" });
  squashfs(join(a, "root.squashfs"), "alpine");
  writeFileSync(join(root, "images/alpine/3.20/arm64/cloud/metadata.json"), JSON.stringify({ aliases: ["alpine/latest-cloud"] }));
  writeFileSync(join(root, "images/alpine/.requirements"), JSON.stringify({ secureboot: "false" }));
  run(SSGEN, ["build", "--timestamp", String(TIMESTAMP - 86400), root]);
  return root;
}

// The files of an export of a newer debian/bookworm, made 2026-08-01 03:52
// (its metadata.yaml names the os in lower case, as the server's directory
// does, so that the page files it in the same product).
function newerBookworm(name) {
  const exported = tempDir(name);
  const meta = join(exported, "meta-77aa.tar.xz");
  const root = join(exported, "77aa.squashfs");
  metadataTarball(meta, { created: 1785556320, os: "debian", release: "bookworm", serial: "20260801_03:52" });
  squashfs(root, `bookworm-${name}`);
  return { meta, root };
}

test("export files merged into the server's images.json, chosen or fetched, give ssgen build's documents for the whole server", async () => {
  const serverRoot = makeServer();
  const { meta, root } = newerBookworm("merge-export");
  // What ssgen build gives once the files are where the page says: the
  // server's tree with one more version.
  const whole = tempDir("merge-whole");
  run("cp", ["-a", join(serverRoot, "images"), whole]);
  const dir = join(whole, "images/debian/bookworm/amd64/default/20260801_0352");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "incus.tar.xz"), readFileSync(meta));
  writeFileSync(join(dir, "rootfs.squashfs"), readFileSync(root));
  const expected = ssgenBuild(whole, TIMESTAMP);
  const products = JSON.parse(expected.imagesJson).products;
  assert.deepEqual(Object.keys(products), ["alpine:3.20:arm64:cloud", "debian:bookworm:amd64:default"]);
  assert.deepEqual(Object.keys(products["debian:bookworm:amd64:default"].versions), ["20260731_0352", "20260801_0352"]);
  const alone = tempDir("merge-alone");
  mkdirSync(join(alone, "images/debian/bookworm/amd64/default/20260801_0352"), { recursive: true });
  run("cp", [join(dir, "incus.tar.xz"), join(dir, "rootfs.squashfs"), join(alone, "images/debian/bookworm/amd64/default/20260801_0352")]);
  const onlyThis = ssgenBuild(alone, TIMESTAMP);

  const { page, problems } = await openPage(suite.browser, pageUrl());
  await page.setInputFiles('[data-testid="files-input"]', [meta, root]);
  await waitDone(page);
  // Unmerged, the catalog holds this image only, and the page says plainly
  // what uploading it would do.
  assert.deepEqual(await documents(page), onlyThis);
  assert.equal(await page.isVisible("#replaces"), true);
  assert.match(await page.textContent("#replaces"), /replaces.*every other image disappears/s);

  const merged = async () => {
    await page.waitForSelector('#merged:not([hidden])', { timeout: 30_000 });
    await waitDone(page);
    return documents(page);
  };
  await page.setInputFiles('[data-testid="merge-input"]', join(serverRoot, "streams/v1/images.json"));
  assert.deepEqual(await merged(), expected);
  assert.equal(await page.isVisible("#replaces"), false);
  assert.match(await page.textContent("#merged"), /Merged into images\.json: 2 product\(s\).*adds debian:bookworm:amd64:default 20260801_0352/);
  assert.match(await page.textContent("#summary"), /^2 product\(s\) in the merged catalog, 1 version\(s\) added\./);
  assert.equal(await page.textContent("#timestamp-note"), "updated: Sat, 01 Aug 2026 04:00:00 +0000 (from ?timestamp=)");
  await page.screenshot({ path: join(ARTIFACTS, "merged.png"), fullPage: true });

  // Back to this image alone, then the same merge from the server's URL.
  await page.click("#merge-off");
  await page.waitForSelector("#merged", { state: "hidden" });
  await waitDone(page);
  assert.deepEqual(await documents(page), onlyThis);
  const published = await serve(serverRoot, { cors: true });
  try {
    await page.fill('[data-testid="merge-url"]', published.url);
    await page.click("#merge-fetch");
    assert.deepEqual(await merged(), expected);
    assert.match(await page.textContent("#merged"), new RegExp(`Merged into ${published.url}streams/v1/images\\.json`));
  } finally {
    await published.close();
  }

  // A version the server lists already, with other files: refused by name,
  // and no documents are offered.
  await page.fill('#loose-form [name="version"]', "20260731_0352");
  await page.waitForSelector('body[data-state="error"]', { timeout: 30_000 });
  assert.match(await page.textContent("#error"), /debian:bookworm:amd64:default already has version 20260731_0352, with other files/);
  assert.equal(await page.isVisible("#output"), false);
  assert.deepEqual(problems, []);
  await page.close();
});

test("a server that does not let other pages read its catalog gets a merge error saying what to do instead", async () => {
  const serverRoot = makeServer();
  const { meta, root } = newerBookworm("merge-cors");
  const { page } = await openPage(suite.browser, pageUrl());
  await page.setInputFiles('[data-testid="files-input"]', [meta, root]);
  await waitDone(page);
  const published = await serve(serverRoot); // no Access-Control-Allow-Origin
  try {
    await page.fill('[data-testid="merge-url"]', published.url);
    await page.click("#merge-fetch");
    await page.waitForSelector('body[data-state="error"]', { timeout: 30_000 });
  } finally {
    await published.close();
  }
  const message = await page.textContent("#error");
  assert.match(message, new RegExp(`cannot read ${published.url}streams/v1/index\\.json`));
  assert.match(message, /Access-Control-Allow-Origin.*choose it as a file/);
  await page.close();
});
