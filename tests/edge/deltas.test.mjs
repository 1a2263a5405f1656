// Image diffs through the edge: `ssgen push` sends the deltas `ssgen build`
// made, and the Worker's catalog names them as the build does; a delta
// that decodes to other bytes is not sent. Run by tests/edge/run.sh.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { buildImagesJson, edgeFiles, push, sha256, ssgen, startEdge, tempDir } from "./lib.mjs";

const T = 1785556800;
const PRODUCT = "images/ssgen/1/amd64/default";
const V1 = "20260801_0000";
const V2 = "20260802_0000";
const DELTA = `${PRODUCT}/${V2}/delta-${V1}.vcdiff`;

const sh = (cmd, args) => execFileSync(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });

/** Bytes that do not compress, the same on every run. */
function noise(seed, len) {
  const blocks = [];
  for (let i = 0; i < len; i += 32) blocks.push(Buffer.from(sha256(`${seed}-${i}`), "hex"));
  return Buffer.concat(blocks).subarray(0, len);
}

/** A version whose squashfs holds `files` (name → bytes). */
function version(root, name, files) {
  const dir = join(root, PRODUCT, name);
  mkdirSync(dir, { recursive: true });
  const work = tempDir("img");
  writeFileSync(join(work, "metadata.yaml"),
    `architecture: x86_64\ncreation_date: ${T}\nproperties:\n  os: ssgen\n  release: "1"\n  variant: default\n`);
  mkdirSync(join(work, "rootfs", "usr"), { recursive: true });
  for (const [n, bytes] of Object.entries(files)) writeFileSync(join(work, "rootfs", "usr", n), bytes);
  const tarOpts = ["--sort=name", "--owner=0", "--group=0", "--numeric-owner", `--mtime=@${T}`];
  sh("tar", ["-cJf", join(dir, "incus.tar.xz"), ...tarOpts, "-C", work, "metadata.yaml"]);
  sh("mksquashfs", [join(work, "rootfs"), join(dir, "rootfs.squashfs"), "-noappend", "-quiet", "-all-root",
    "-mkfs-time", String(T), "-all-time", String(T)]);
  rmSync(work, { recursive: true, force: true });
}

/** Two versions, the second the first with one file changed, built with the delta. */
async function treeWithDelta() {
  const root = tempDir("tree");
  const files = {};
  for (let i = 0; i < 40; i++) files[`lib${i}.so`] = noise(i, 32 << 10);
  version(root, V1, files);
  files["lib7.so"] = noise(1007, 32 << 10);
  version(root, V2, files);
  const r = await ssgen(["build", root, "--timestamp", String(T)]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(readFileSync(join(root, DELTA)).length > 0, "ssgen build made no delta");
  return root;
}

describe("deltas pushed to the edge", () => {
  let edge;
  let root;
  before(async () => {
    root = await treeWithDelta();
    edge = await startEdge();
  });
  after(async () => edge?.stop());

  test("the delta goes up, and the edge's catalog names it as ssgen build does", async () => {
    const r = await push(root, edge.url, ["--timestamp", String(T)]);
    assert.match(r.stderr, /5 file\(s\) in the tree, 5 to upload/);
    const images = Buffer.from(await (await fetch(`${edge.url}/streams/v1/images.json`)).arrayBuffer());
    const built = await buildImagesJson(root, T);
    assert.ok(images.equals(built.images), "images.json differs from ssgen build");
    const item = JSON.parse(images).products["ssgen:1:amd64:default"].versions[V2].items[`squashfs.${V1}.vcdiff`];
    assert.equal(item?.delta_base, V1, JSON.stringify(item));
    assert.equal(item.path, DELTA);
    const served = Buffer.from(await (await fetch(`${edge.url}/${DELTA}`)).arrayBuffer());
    assert.ok(served.equals(readFileSync(join(root, DELTA))), "the edge serves other bytes for the delta");
  });
});

describe("a wrong delta and the edge", () => {
  let edge;
  let root;
  before(async () => {
    root = await treeWithDelta();
    // A valid VCDIFF from version 1 to other bytes, in place of the delta.
    const other = readFileSync(join(root, PRODUCT, V2, "rootfs.squashfs"));
    other.fill(7, 3000, 3100);
    const otherPath = join(tempDir("other"), "other.squashfs");
    writeFileSync(otherPath, other);
    sh("xdelta3", ["-e", "-f", "-S", "none", "-s", join(root, PRODUCT, V1, "rootfs.squashfs"), otherPath,
      join(root, DELTA)]);
    edge = await startEdge();
  });
  after(async () => edge?.stop());

  test("is not sent, and no catalog names it", async () => {
    const r = await push(root, edge.url, ["--timestamp", String(T)]);
    assert.match(r.stderr, /delta left out/);
    const doc = await (await fetch(`${edge.url}/streams/v1/images.json`)).json();
    const items = doc.products["ssgen:1:amd64:default"].versions[V2].items;
    assert.equal(items[`squashfs.${V1}.vcdiff`], undefined, JSON.stringify(items));
    assert.equal((await edgeFiles(edge.url)).get(DELTA), undefined, "the wrong delta was uploaded");
    assert.equal((await fetch(`${edge.url}/${DELTA}`)).status, 404);
  });
});
