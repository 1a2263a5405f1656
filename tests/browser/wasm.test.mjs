// The shipped wasm (web/pkg, the --target web build) under Node: the
// exports the page uses, on real bytes, checked against Node's own SHA-256.

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { WEB, ensureBuilt, metadataTarball, removeTemps, run, tempDir } from "./lib.mjs";

let ssgen;

after(removeTemps);

before(async () => {
  ensureBuilt();
  ssgen = await import(join(WEB, "pkg/ssgen_wasm.js"));
  ssgen.initSync({ module: readFileSync(join(WEB, "pkg/ssgen_wasm_bg.wasm")) });
});

const sha = (...parts) => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest("hex");
};

const DIR = "images/debian/12/amd64/default/20260801_0312";
const XZ_HEAD = Uint8Array.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0, 0, 4]);
const SQUASHFS_HEAD = new TextEncoder().encode("hsqs\0\0\0\0");

// Hashes `bytes` in uneven chunks, as a worker would.
function hash(job, store, bytes) {
  const h = new ssgen.Hasher(job, store);
  for (let i = 0; i < bytes.length; i += 65_537) h.update(bytes.subarray(i, i + 65_537));
  return h.finish(store);
}

// A real metadata tarball's bytes.
function realMetadata(options = {}) {
  const path = join(tempDir("wasm-meta"), "meta.tar.xz");
  metadataTarball(path, { created: 1785556320, os: "debian", release: "12", serial: "s", ...options });
  return readFileSync(path);
}

// `pull()` over `bytes` in pieces of `size`, as the worker reads a File with
// FileReaderSync; `reads` counts the pieces handed out.
function puller(bytes, size = 100) {
  let offset = 0;
  const pull = () => {
    pull.reads += 1;
    const piece = bytes.subarray(offset, offset + size);
    offset += piece.length;
    return new Uint8Array(piece);
  };
  pull.reads = 0;
  return pull;
}

test("plan, hash in two workers, record, build: the digests are Node's", () => {
  const meta = realMetadata();
  const squash = Buffer.concat([SQUASHFS_HEAD, randomBytes(300_000)]);
  const builder = new ssgen.Builder(1785556800);
  builder.addFile(`${DIR}/incus.tar.xz`, meta.length, meta.subarray(0, 8));
  builder.addFile(`${DIR}/rootfs.squashfs`, squash.length, squash.subarray(0, 8));
  const { plan, hasErrors, products } = builder.scan();
  assert.equal(hasErrors, false);
  assert.equal(products[0].id, "debian:12:amd64:default");
  assert.deepEqual(plan.prefixes.map((j) => j.path), [`${DIR}/incus.tar.xz`]);
  assert.deepEqual(plan.bodies[0].prefixes, [`${DIR}/incus.tar.xz`]);
  assert.equal(plan.totalBytes, meta.length + squash.length);

  // Worker A hashes the metadata; worker B never saw it, so it must hash
  // the metadata itself before the body (its state cannot be sent).
  const a = new ssgen.PrefixStore();
  const b = new ssgen.PrefixStore();
  const m = hash(plan.prefixes[0], a, meta);
  assert.equal(m.sha256, sha(meta));
  assert.equal(a.has(`${DIR}/incus.tar.xz`), true);
  assert.throws(() => new ssgen.Hasher(plan.bodies[0], b), /before its metadata file/);
  hash(plan.prefixes[0], b, meta);
  const r = hash(plan.bodies[0], b, squash);
  assert.equal(r.sha256, sha(squash));
  assert.deepEqual(r.combined, [[`${DIR}/incus.tar.xz`, sha(meta, squash)]]);

  // Results are plain data: they survive a structured clone (postMessage).
  builder.record(structuredClone(m));
  builder.record(structuredClone(r));
  assert.equal(builder.scan().plan.bodies.length, 0);
  const out = builder.build();
  const images = JSON.parse(out.imagesJson);
  const items = images.products["debian:12:amd64:default"].versions["20260801_0312"].items;
  assert.equal(items["incus.tar.xz"].combined_squashfs_sha256, sha(meta, squash));
  assert.equal(items["lxd.tar.xz"].path, `${DIR}/incus.tar.xz`);
  assert.equal(items.squashfs.sha256, sha(squash));
  assert.match(out.indexJson, /"updated": "Sat, 01 Aug 2026 04:00:00 \+0000"/);
  assert.equal(typeof out.lint.summary, "string");
  assert.ok(Array.isArray(out.lint.findings));
});

test("a file cut short is refused with the path, as ssgen build refuses it", () => {
  const bytes = Buffer.concat([XZ_HEAD, randomBytes(5_000)]);
  const job = { path: `${DIR}/incus.tar.xz`, size: bytes.length, isPrefix: true, prefixes: [] };
  const store = new ssgen.PrefixStore();
  assert.throws(() => hash(job, store, bytes), /incus\.tar\.xz: the xz stream has no end/);
  assert.equal(store.has(job.path), false);
});

test("a file that changed size and a bad digest are refused with the path", () => {
  const job = { path: `${DIR}/rootfs.squashfs`, size: 10, isPrefix: false, prefixes: [] };
  const store = new ssgen.PrefixStore();
  const h = new ssgen.Hasher(job, store);
  h.update(new Uint8Array(4));
  assert.equal(h.bytesSeen, 4);
  assert.throws(() => h.finish(store), /rootfs\.squashfs: listed with 10 bytes but 4 were read/);
  const builder = new ssgen.Builder(0);
  assert.throws(() => builder.record({ path: "x", size: 1, sha256: "ABC", combined: [] }), /invalid sha256/);
  assert.throws(() => new ssgen.Builder(1.5), /whole Unix seconds/);
  assert.throws(() => builder.addFile("x", -1, null), /whole number of bytes/);
  assert.throws(() => builder.setClients("docker"), /both, lxd or incus/);
});

test("a build with problems that block publishing says which file and why", () => {
  const builder = new ssgen.Builder(0);
  builder.addFile(`${DIR}/incus.tar.xz`, 8, XZ_HEAD);
  builder.addFile(`${DIR}/rootfs.squashfs`, 8, SQUASHFS_HEAD);
  builder.addSideFile("images/debian/.requirements", new TextEncoder().encode('{"secureboot": false}'));
  const scan = builder.scan();
  assert.equal(scan.hasErrors, true);
  assert.ok(scan.diagnostics.some((d) => d.level === "error" && d.path === "images/debian/.requirements"));
  assert.throws(() => builder.build(), /images\/debian\/\.requirements/);
  assert.equal(ssgen.needsContents("images/debian/.requirements"), true);
  assert.equal(ssgen.needsContents(`${DIR}/rootfs.squashfs`), false);
});

test("a metadata tarball without a readable metadata.yaml is refused as ssgen build refuses it", () => {
  const dir = tempDir("wasm-nometa");
  run("mkdir", ["-p", join(dir, "templates")]);
  run("sh", ["-c", `echo x > ${join(dir, "templates/a.tpl")}`]);
  run("tar", ["-cJf", join(dir, "t.tar.xz"), "-C", dir, "templates"]);
  const bytes = readFileSync(join(dir, "t.tar.xz"));
  const job = { path: `${DIR}/incus.tar.xz`, size: bytes.length, isPrefix: true, prefixes: [] };
  const store = new ssgen.PrefixStore();
  assert.throws(() => hash(job, store, bytes), /incus\.tar\.xz: has no metadata\.yaml.*LXD and Incus would refuse to import this image/);
  assert.equal(store.has(job.path), false);
});

test("the files of an export are identified from real tarballs, streamed, and placed by the core", () => {
  for (const compress of ["xz", "gz"]) {
    const bytes = realMetadata({ arch: "aarch64", os: "Ubuntu", release: "noble", variant: "cloud", compress });
    const pull = puller(bytes);
    const got = ssgen.identifyExport(pull);
    assert.deepEqual(got.identified, { is: "metadata" });
    assert.equal(got.metadata.compression, compress === "xz" ? "xz" : "gzip");
    // As `ssgen import` files it: the names as metadata.yaml writes them.
    assert.deepEqual(got.metadata.proposal, { os: "Ubuntu", release: "noble", arch: "arm64", variant: "cloud", version: "20260801_0352" });
    assert.equal(got.metadata.creationDate, 1785556320);
    assert.equal(got.head.length, ssgen.headLength());
  }
  // A squashfs is known from its first bytes: nothing more is read.
  const squash = Buffer.concat([SQUASHFS_HEAD, randomBytes(300_000)]);
  const pull = puller(squash, 1024);
  assert.deepEqual(ssgen.identifyExport(pull).identified, { is: "root", ftype: "squashfs" });
  assert.equal(pull.reads, 1);
  // A root filesystem tarball is a root.tar.xz.
  const dir = tempDir("wasm-roottar");
  run("tar", ["-cJf", join(dir, "r.tar.xz"), "-C", "/etc", "hostname"]);
  const rootTar = ssgen.identifyExport(puller(readFileSync(join(dir, "r.tar.xz"))));
  assert.deepEqual(rootTar.identified, { is: "root", ftype: "root.tar.xz" });
  assert.equal(rootTar.metadata, null);

  const broken = realMetadata();
  assert.throws(() => ssgen.identifyExport(puller(broken.subarray(0, broken.length >> 1))), /truncated|corrupt/);
  assert.deepEqual(ssgen.identifyExport(puller(new TextEncoder().encode("hello, world"))).identified.is, "not");
  assert.throws(
    () =>
      ssgen.identifyExport(() => {
        throw new Error("disk on fire");
      }),
    /disk on fire/,
  );

  const meta = ssgen.identifyExport(puller(realMetadata()));
  const root = ssgen.identifyExport(puller(squash));
  const exp = new ssgen.Export([
    { name: "meta-0f3c.tar.xz", size: 900, ...meta },
    { name: "0f3c.squashfs", size: squash.length, ...root },
    { name: "README", size: 12, ...ssgen.identifyExport(puller(new TextEncoder().encode("hello, world"))) },
  ]);
  const placed = exp.placements();
  assert.deepEqual(
    placed.map((p) => [p.target, p.ftype]),
    [["incus.tar.xz", "incus.tar.xz"], ["rootfs.squashfs", "squashfs"], [null, null]],
  );
  assert.match(placed[2].reason, /not an image file/);
  const fields = { os: "debian", release: "12", arch: "amd64", variant: "default", version: "20260801_0352", aliases: ["debian/stable"] };
  const layout = exp.layout(fields);
  assert.equal(layout.versionDir, "images/debian/12/amd64/default/20260801_0352");
  assert.deepEqual(layout.files.map((f) => f.path), [`${layout.versionDir}/incus.tar.xz`, `${layout.versionDir}/rootfs.squashfs`, null]);
  assert.deepEqual(layout.sideFiles, [
    { path: "images/debian/12/amd64/default/metadata.json", name: "metadata.json", text: '{\n  "aliases": [\n    "debian/stable"\n  ]\n}\n' },
  ]);
  assert.throws(() => exp.layout({ ...fields, os: "de bian" }), /os "de bian"/);
  assert.equal(ssgen.fieldProblem("version", "latest")?.includes("YYYYMMDD"), true);
  assert.equal(ssgen.fieldProblem("os", "debian"), undefined);
  exp.free();
});

test("the version the page proposes takes the form of the server's versions of the product", () => {
  const fields = { os: "debian", release: "12", arch: "amd64", variant: "default" };
  const server = (versions) =>
    JSON.stringify({
      format: "products:1.0",
      products: { "debian:12:amd64:default": { versions: Object.fromEntries(versions.map((v) => [v, { items: {} }])) } },
    });
  assert.equal(ssgen.proposeVersion(1785556320, fields, null), "20260801_0352");
  assert.equal(ssgen.proposeVersion(1785556320, fields, server(["20260731_03:52"])), "20260801_03:52");
  assert.equal(ssgen.proposeVersion(1785556320, fields, server(["202607310352"])), "202608010352");
  assert.equal(ssgen.proposeVersion(1785556320, { ...fields, release: "13" }, server(["20260731_03:52"])), "20260801_0352");
});

test("the lint reads any catalog and says what the clients hide", () => {
  const index = JSON.stringify({
    format: "index:1.0",
    index: { images: { datatype: "image-downloads", path: "streams/v1/images.json", format: "products:1.0", products: ["p"] } },
  });
  const images = JSON.stringify({ content_id: "images", format: "products:1.0", products: { p: { arch: "x86-64", versions: {} } } });
  const report = ssgen.lint(index, images);
  assert.ok(report.findings.some((f) => f.code === "hidden-unknown-arch"), JSON.stringify(report));
  assert.match(report.summary, /warning|error/);
});
