// The files of an export, dropped on the page, go where `ssgen import`
// puts them: the same path for every file, and the same catalog.

import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { test } from "node:test";
import { ARTIFACTS, SSGEN, metadataTarball, openPage, qcow2, run, sha256File, squashfs, ssgenBuild, tempDir, useBrowser, waitDone } from "./lib.mjs";

const TIMESTAMP = 1785556800; // Sat, 01 Aug 2026 04:00:00 +0000
const suite = useBrowser();

// Every file under `dir`, relative to `root`.
function filesUnder(dir, root = dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...filesUnder(path, root));
    else out.push(relative(root, path));
  }
  return out;
}

// Where `ssgen import` puts each of `sources` in `root`: {file name: path
// relative to the root}, found by content; and the catalog it builds.
async function imported(sources, root) {
  run(SSGEN, ["import", "--timestamp", String(TIMESTAMP), "--deltas", "0", "--root", root, ...sources]);
  const byHash = new Map();
  for (const rel of filesUnder(join(root, "images"), root)) byHash.set(await sha256File(join(root, rel)), rel);
  const where = {};
  for (const src of sources) where[src.split("/").pop()] = byHash.get(await sha256File(src)) ?? null;
  return {
    where,
    imagesJson: readFileSync(join(root, "streams/v1/images.json"), "utf8"),
    indexJson: readFileSync(join(root, "streams/v1/index.json"), "utf8"),
  };
}

// Where the page puts each file ({file name: path}), from its table, and
// its documents.
async function placedByPage(page) {
  const rows = await page.locator("#placements tbody tr").evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
  return {
    where: Object.fromEntries(rows.map(([name, path]) => [name, path])),
    imagesJson: await page.textContent('[data-testid="images-json"]'),
    indexJson: await page.textContent('[data-testid="index-json"]'),
  };
}

// A unified tarball: metadata.yaml, templates and rootfs/ in one file.
function unifiedTarball(path, { created, os, release }) {
  const dir = tempDir("unified");
  writeFileSync(
    join(dir, "metadata.yaml"),
    `architecture: aarch64\ncreation_date: ${created}\nproperties:\n  architecture: aarch64\n  os: ${os}\n  release: "${release}"\n  variant: cloud\n`,
  );
  mkdirSync(join(dir, "rootfs/etc"), { recursive: true });
  writeFileSync(join(dir, "rootfs/etc/os-release"), `NAME=${os}\n`);
  run("tar", ["-czf", path, "-C", dir, "metadata.yaml", "rootfs"]);
}

// The exports of each kind `lxc image export` and `incus image export`
// write, with their own file names.
function exportsOfEveryKind() {
  const dir = tempDir("exports");
  const at = (name) => join(dir, name);
  // A container with a squashfs; the os as metadata.yaml spells it.
  metadataTarball(at("meta-0f3c.tar.xz"), { created: 1785556320, os: "Debian", release: "bookworm", serial: "a" });
  squashfs(at("0f3c.squashfs"), "bookworm");
  // A container with a root filesystem tarball: root.tar.xz, whatever the
  // export calls it.
  metadataTarball(at("meta-1a2b.tar.xz"), { created: 1785470000, os: "alpine", release: "3.20", variant: "default", serial: "b" });
  const rootfs = tempDir("rootfs");
  mkdirSync(join(rootfs, "etc"));
  writeFileSync(join(rootfs, "etc/os-release"), "NAME=Alpine\n");
  run("tar", ["-cJf", at("1a2b.tar.xz"), "-C", rootfs, "etc"]);
  // A unified tarball.
  unifiedTarball(at("9c8d.tar.gz"), { created: 1785383640, os: "ubuntu", release: "noble" });
  // A virtual machine: a gzip metadata tarball and a qcow2 disk.
  metadataTarball(at("meta-5e6f.tar.gz"), { created: 1785297240, os: "fedora", release: "40", variant: "default", serial: "d", compress: "gz" });
  qcow2(at("5e6f.qcow2"), "64M");
  return [
    [at("meta-0f3c.tar.xz"), at("0f3c.squashfs")],
    [at("meta-1a2b.tar.xz"), at("1a2b.tar.xz")],
    [at("9c8d.tar.gz")],
    [at("meta-5e6f.tar.gz"), at("5e6f.qcow2")],
  ];
}

test("every kind of export goes where ssgen import puts it, file by file, with import's catalog", async () => {
  const { page, problems } = await openPage(suite.browser, `${suite.server.url}?timestamp=${TIMESTAMP}`);
  let runNumber = 0;
  for (const files of exportsOfEveryKind()) {
    await page.setInputFiles('[data-testid="files-input"]', files);
    await waitDone(page, 60_000, ++runNumber);
    const ours = await placedByPage(page);
    const theirs = await imported(files, tempDir("import-root"));
    assert.deepEqual(ours.where, theirs.where, `${files.join(", ")}: the same path for every file`);
    assert.ok(Object.values(ours.where).every((p) => p.startsWith("images/")), JSON.stringify(ours.where));
    assert.equal(ours.imagesJson, theirs.imagesJson, `${files.join(", ")}: import's images.json`);
    assert.equal(ours.indexJson, theirs.indexJson, `${files.join(", ")}: import's index.json`);
  }
  // The settled names: the root tarball is root.tar.xz, the versions
  // YYYYMMDD_HHMM in UTC.
  const all = (await placedByPage(page)).where;
  assert.match(all["5e6f.qcow2"], /^images\/fedora\/40\/amd64\/default\/20260729_0354\/disk\.qcow2$/);
  assert.deepEqual(problems, []);
  await page.close();
});

test("the root tarball and the version of an export are named as ssgen import names them", async () => {
  const [, withRootTar] = exportsOfEveryKind();
  const { page, problems } = await openPage(suite.browser, `${suite.server.url}?timestamp=${TIMESTAMP}`);
  await page.setInputFiles('[data-testid="files-input"]', withRootTar);
  await waitDone(page);
  assert.deepEqual((await placedByPage(page)).where, {
    "meta-1a2b.tar.xz": "images/alpine/3.20/amd64/default/20260731_0353/incus.tar.xz",
    "1a2b.tar.xz": "images/alpine/3.20/amd64/default/20260731_0353/root.tar.xz",
  });
  assert.deepEqual(problems, []);
  await page.close();
});

test("merged into a server whose versions are YYYYMMDD_HH:MM, an export's version takes that form, as ssgen import gives it", async () => {
  // A server whose product names its versions as images.linuxcontainers.org does.
  const server = tempDir("colon-server");
  const old = join(server, "images/debian/bookworm/amd64/default/20260731_03:52");
  metadataTarball(join(old, "incus.tar.xz"), { created: 1785469920, os: "debian", release: "bookworm", serial: "old" });
  squashfs(join(old, "rootfs.squashfs"), "bookworm-old");
  run(SSGEN, ["build", "--timestamp", String(TIMESTAMP - 86400), "--deltas", "0", server]);
  const exported = tempDir("colon-export");
  const files = [join(exported, "meta-77aa.tar.xz"), join(exported, "77aa.squashfs")];
  metadataTarball(files[0], { created: 1785556320, os: "debian", release: "bookworm", serial: "new" });
  squashfs(files[1], "bookworm-new");

  const { page, problems } = await openPage(suite.browser, `${suite.server.url}?timestamp=${TIMESTAMP}`);
  await page.setInputFiles('[data-testid="files-input"]', files);
  await waitDone(page);
  // Alone, the product has no versions: the default form.
  assert.equal(await page.inputValue('#loose-form [name="version"]'), "20260801_0352");
  await page.setInputFiles('[data-testid="merge-input"]', join(server, "streams/v1/images.json"));
  await page.waitForSelector("#merged:not([hidden])", { timeout: 30_000 });
  await waitDone(page);
  assert.equal(await page.inputValue('#loose-form [name="version"]'), "20260801_03:52");

  const root = tempDir("colon-import");
  run("cp", ["-a", join(server, "images"), root]);
  const theirs = await imported(files, root);
  const ours = await placedByPage(page);
  assert.deepEqual(ours.where, theirs.where);
  assert.equal(ours.where["77aa.squashfs"], "images/debian/bookworm/amd64/default/20260801_03:52/rootfs.squashfs");
  // The merged catalog is what import's rebuild of the whole server gives.
  assert.equal(ours.imagesJson, theirs.imagesJson);
  assert.equal(ours.indexJson, theirs.indexJson);
  await page.screenshot({ path: join(ARTIFACTS, "export-colon.png"), fullPage: true });
  assert.deepEqual(problems, []);
  await page.close();
});

test("a field the core refuses is named, and no documents are offered", async () => {
  const [split] = exportsOfEveryKind();
  const { page, problems } = await openPage(suite.browser, `${suite.server.url}?timestamp=${TIMESTAMP}`);
  await page.setInputFiles('[data-testid="files-input"]', split);
  await waitDone(page);
  await page.fill('#loose-form [name="variant"]', "cloud init");
  await page.waitForSelector('body[data-state="error"]', { timeout: 30_000 });
  assert.match(await page.textContent("#error"), /variant “cloud init”: only A-Z a-z 0-9/);
  assert.equal(await page.isVisible("#output"), false);
  assert.equal(await page.$eval('#loose-form [name="variant"]', (i) => i.validity.valid), false);
  // Put right, the catalog is ssgen build's for the files where the page says.
  await page.fill('#loose-form [name="variant"]', "cloud-init");
  await page.waitForFunction(() => document.body.dataset.state === "done");
  const tree = tempDir("field-fixed");
  const dir = join(tree, "images/Debian/bookworm/amd64/cloud-init/20260801_0352");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "incus.tar.xz"), readFileSync(split[0]));
  writeFileSync(join(dir, "rootfs.squashfs"), readFileSync(split[1]));
  const expected = ssgenBuild(tree, TIMESTAMP);
  assert.equal(await page.textContent('[data-testid="images-json"]'), expected.imagesJson);
  assert.deepEqual(problems, []);
  await page.close();
});
