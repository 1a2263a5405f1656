// The edge handler under the real Workers runtime (workerd, through
// Miniflare 4) with KV and R2 emulated on disk, driven over loopback HTTP
// by `ssgen push` and by raw requests. Run by tests/edge/run.sh.
import assert from "node:assert/strict";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { after, before, describe, test } from "node:test";

import {
  SSGEN, TOKEN, auth, buildImagesJson, edgeFiles, makeVersion, multipart, publish, push, putFile, raw, sha256, ssgen,
  startEdge, tempDir, versions, withStores,
} from "./lib.mjs";

const T = 1785556800;
const V1 = "images/debian/12/amd64/default/20260801_0312";

describe("a pushed tree", () => {
  let edge;
  let root;
  before(async () => {
    root = tempDir("tree");
    makeVersion(root, { version: "20260801_0312" });
    makeVersion(root, { version: "20260802_0312", meta: "lxd.tar.xz" });
    makeVersion(root, { os: "alpine", release: "3.20", version: "20260801_0000", unified: true });
    makeVersion(root, { os: "alpine", release: "3.20", arch: "arm64", version: "20260801_0000", seed: "arm", unified: true });
    edge = await startEdge();
  });
  after(async () => edge?.stop());

  test("nothing is published before the first publish", async () => {
    const r = await fetch(`${edge.url}/streams/v1/index.json`);
    assert.equal(r.status, 404);
    assert.match((await r.json()).error, /no catalog published yet/);
  });

  test("ssgen push gives the bytes of ssgen build, and a second push uploads nothing", async () => {
    const first = await push(root, edge.url, ["--timestamp", String(T)]);
    assert.match(first.stderr, /6 file\(s\) in the tree, 6 to upload/);
    const built = await buildImagesJson(root, T);
    const images = Buffer.from(await (await fetch(`${edge.url}/streams/v1/images.json`)).arrayBuffer());
    const index = Buffer.from(await (await fetch(`${edge.url}/streams/v1/index.json`)).arrayBuffer());
    assert.ok(images.equals(built.images), "images.json differs from ssgen build");
    assert.ok(images.equals(built.dry), "images.json differs from ssgen build --dry-run");
    assert.ok(index.equals(built.index), "index.json differs from ssgen build");
    const again = await push(root, edge.url, ["--timestamp", String(T + 999)]);
    assert.match(again.stderr, /0 to upload/);
    assert.match(again.stderr, /unchanged/);
    const same = Buffer.from(await (await fetch(`${edge.url}/streams/v1/images.json`)).arrayBuffer());
    assert.ok(same.equals(images), "an unchanged tree keeps its catalog bytes (and `updated`)");
  });

  test("index and images: ETag, 304, short cache, HEAD, JSON, CORS", async () => {
    for (const name of ["index.json", "images.json"]) {
      const url = `${edge.url}/streams/v1/${name}`;
      const r = await fetch(url);
      const body = Buffer.from(await r.arrayBuffer());
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("content-type"), "application/json");
      assert.equal(r.headers.get("cache-control"), "public, max-age=60");
      assert.equal(r.headers.get("access-control-allow-origin"), "*");
      assert.equal(r.headers.get("etag"), `"${sha256(body)}"`);
      const h = await fetch(url, { method: "HEAD" });
      assert.equal(h.status, 200);
      assert.equal(h.headers.get("content-length"), String(body.length));
      assert.equal((await h.arrayBuffer()).byteLength, 0);
      const c = await fetch(url, { headers: { "if-none-match": r.headers.get("etag") } });
      assert.equal(c.status, 304);
      const d = await fetch(url, { headers: { "if-none-match": '"0000"' } });
      assert.equal(d.status, 200);
      const p = await fetch(url, { method: "POST" });
      assert.equal(p.status, 405);
      assert.match(p.headers.get("allow"), /GET, HEAD/);
    }
  });

  test("the content-addressed snapshot is served immutable", async () => {
    const r = await fetch(`${edge.url}/streams/v1/images.json`);
    const sha = r.headers.get("etag").replaceAll('"', "");
    const s = await fetch(`${edge.url}/streams/v1/snapshots/${sha}.json`);
    assert.equal(s.status, 200);
    assert.equal(s.headers.get("cache-control"), "public, max-age=31536000, immutable");
    assert.equal(sha256(Buffer.from(await s.arrayBuffer())), sha);
    assert.equal((await fetch(`${edge.url}/streams/v1/snapshots/${"0".repeat(64)}.json`)).status, 404);
    assert.equal((await fetch(`${edge.url}/streams/v1/snapshots/nope.json`)).status, 404);
  });

  test("image files: whole, HEAD, single Range, 416, conditionals, types", async () => {
    const path = `${V1}/rootfs.squashfs`;
    const bytes = readFileSync(join(root, path));
    const url = `${edge.url}/${path}`;
    const r = await fetch(url);
    assert.equal(r.status, 200);
    assert.ok(Buffer.from(await r.arrayBuffer()).equals(bytes));
    assert.equal(r.headers.get("content-type"), "application/octet-stream");
    assert.equal(r.headers.get("content-encoding"), null);
    assert.equal(r.headers.get("accept-ranges"), "bytes");
    assert.equal(r.headers.get("etag"), `"${sha256(bytes)}"`);
    const etag = r.headers.get("etag");
    const lastModified = r.headers.get("last-modified");

    const h = await fetch(url, { method: "HEAD" });
    assert.equal(h.status, 200);
    assert.equal(h.headers.get("content-length"), String(bytes.length));

    const part = async (range, extra = {}) => fetch(url, { headers: { range, ...extra } });
    let p = await part("bytes=0-3");
    assert.equal(p.status, 206);
    assert.equal(p.headers.get("content-range"), `bytes 0-3/${bytes.length}`);
    assert.equal(Buffer.from(await p.arrayBuffer()).toString(), "hsqs");
    p = await part("bytes=-10");
    assert.equal(p.status, 206);
    assert.ok(Buffer.from(await p.arrayBuffer()).equals(bytes.subarray(bytes.length - 10)));
    p = await part("bytes=100-");
    assert.equal(p.status, 206);
    assert.ok(Buffer.from(await p.arrayBuffer()).equals(bytes.subarray(100)));
    p = await part(`bytes=${bytes.length}-`);
    assert.equal(p.status, 416);
    assert.equal(p.headers.get("content-range"), `bytes */${bytes.length}`);
    p = await part("bytes=0-1,5-6");
    assert.equal(p.status, 200, "several ranges are answered with the whole file");
    p = await part("bytes=0-3", { "if-range": '"stale"' });
    assert.equal(p.status, 200, "a stale If-Range gets the whole file");
    p = await part("bytes=0-3", { "if-range": etag });
    assert.equal(p.status, 206);
    const hr = await fetch(url, { method: "HEAD", headers: { range: "bytes=10-19" } });
    assert.equal(hr.status, 206);
    assert.equal(hr.headers.get("content-length"), "10");

    assert.equal((await fetch(url, { headers: { "if-none-match": etag } })).status, 304);
    assert.equal((await fetch(url, { headers: { "if-modified-since": lastModified } })).status, 304);
    assert.equal((await fetch(url, { headers: { "if-match": '"other"' } })).status, 412);
    assert.equal((await fetch(url, { headers: { "if-match": etag } })).status, 200);
    assert.equal(
      (await fetch(url, { headers: { "if-unmodified-since": "Thu, 01 Jan 1970 00:00:00 GMT" } })).status, 412);

    const meta = await fetch(`${edge.url}/${V1}/incus.tar.xz`, { method: "HEAD" });
    assert.equal(meta.headers.get("content-type"), "application/x-xz");
    const uni = await fetch(`${edge.url}/images/alpine/3.20/amd64/default/20260801_0000/incus_combined.tar.gz`, { method: "HEAD" });
    assert.equal(uni.headers.get("content-type"), "application/gzip");
    assert.equal(uni.headers.get("content-encoding"), null, "never Content-Encoding on a .tar.gz (docs/protocol.md#downloads)");

    assert.equal((await fetch(`${edge.url}/${V1}/missing.squashfs`)).status, 404);
    assert.equal((await fetch(`${edge.url}/nope`)).status, 404);
    assert.equal((await fetch(`${edge.url}/index.htm`)).status, 404);
    const post = await fetch(url, { method: "POST" });
    assert.equal(post.status, 405);
    assert.match(post.headers.get("allow"), /PUT/);
  });

  test("CORS preflight lets the page publish", async () => {
    const r = await fetch(`${edge.url}/${V1}/x`, {
      method: "OPTIONS",
      headers: { origin: "https://page.example", "access-control-request-method": "PUT" },
    });
    assert.equal(r.status, 204);
    assert.equal(r.headers.get("access-control-allow-origin"), "*");
    assert.match(r.headers.get("access-control-allow-methods"), /PUT/);
    assert.match(r.headers.get("access-control-allow-headers"), /authorization/);
    assert.match(r.headers.get("access-control-allow-headers"), /x-ssgen-sha256/);
  });

  test("direct-URL import headers choose by the server's architectures", async () => {
    const amd = readFileSync(join(root, "images/alpine/3.20/amd64/default/20260801_0000/incus_combined.tar.gz"));
    const arm = readFileSync(join(root, "images/alpine/3.20/arm64/default/20260801_0000/incus_combined.tar.gz"));
    let r = await fetch(`${edge.url}/aliases/alpine/3.20`, {
      method: "HEAD", headers: { "incus-server-architectures": "x86_64, i686" } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("incus-image-hash"), sha256(amd));
    assert.equal(r.headers.get("lxd-image-hash"), sha256(amd));
    const fileUrl = r.headers.get("incus-image-url");
    assert.equal(fileUrl, `${edge.url}/images/alpine/3.20/amd64/default/20260801_0000/incus_combined.tar.gz`);
    assert.equal(sha256(Buffer.from(await (await fetch(fileUrl)).arrayBuffer())), sha256(amd));
    r = await fetch(`${edge.url}/aliases/alpine/3.20`, { headers: { "lxd-server-architectures": "aarch64" } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("lxd-image-hash"), sha256(arm));
    assert.match(r.headers.get("lxd-image-url"), /arm64/);
    r = await fetch(`${edge.url}/aliases/alpine/3.20/default/arm64`, { method: "HEAD" });
    assert.equal(r.headers.get("incus-image-hash"), sha256(arm));
    r = await fetch(`${edge.url}/aliases/alpine/3.20`, { headers: { "incus-server-architectures": "s390x" } });
    assert.equal(r.status, 404);
    r = await fetch(`${edge.url}/aliases/alpine/3.20`);
    assert.equal(r.status, 400, "two architectures and no header: ambiguous");
    r = await fetch(`${edge.url}/aliases/debian/12`, { headers: { "incus-server-architectures": "x86_64" } });
    assert.equal(r.status, 404, "split images cannot be imported by URL");
    assert.match((await r.json()).error, /unified tarball/);
  });

  test("uploads and publishing need the token; reading does not", async () => {
    const bytes = readFileSync(join(root, V1, "incus.tar.xz"));
    for (const token of [null, "wrong-token", `${TOKEN}x`, ""]) {
      const r = await putFile(edge.url, "images/x/1/amd64/default/20260801_0000/incus.tar.xz", bytes, { token });
      assert.equal(r.status, 401, `token ${token}`);
      assert.match(r.headers.get("www-authenticate"), /Bearer/);
    }
    assert.equal((await fetch(`${edge.url}/publish`, { method: "POST" })).status, 401);
    assert.equal((await fetch(`${edge.url}/publish`, { method: "POST", headers: { authorization: "Bearer nope" } })).status, 401);
    assert.equal((await fetch(`${edge.url}/${V1}/incus.tar.xz`, { method: "DELETE" })).status, 401);
    assert.equal((await fetch(`${edge.url}/api/v1/files`)).status, 401);
    assert.equal((await fetch(`${edge.url}/${V1}/incus.tar.xz`)).status, 200, "the unauthenticated DELETE changed nothing");
    const bad = await ssgen(["push", root, "--to", edge.url, "--token", "wrong"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /refused the token/);
  });

  test("traversal and hidden paths are refused, even with the token", async () => {
    const index = Buffer.from(await (await fetch(`${edge.url}/streams/v1/index.json`)).arrayBuffer());
    const bytes = Buffer.from("x");
    const headers = { ...auth, "x-ssgen-sha256": sha256(bytes) };
    for (const path of [
      "/images/../catalog/current.json",
      "/images/%2e%2e/catalog/current.json",
      "/images/..%2fcatalog/current.json",
      "/images/debian/12/amd64/default/20260801_0312/../../../../../../catalog/current.json",
      "/images/debian/12/amd64/default/.staging/x",
      "/images/debian/12/amd64/default/20260801_0312/.hidden",
      "/images/debian/12/amd64/default/20260801_0312/a%20b",
      "/images//debian/x",
      "/images/debian/12/amd64/default/20260801_0312/rootfs.squashfs/extra",
      "/images/loose-file",
      "/catalog/current.json",
      "/streams/v1/index.json",
    ]) {
      for (const method of ["PUT", "GET", "DELETE"]) {
        if (method === "GET" && path.startsWith("/streams/")) continue;
        const put = method === "PUT";
        const r = await raw(edge.url, method, path, {
          headers: put ? { ...headers, "content-length": "1" } : headers,
          body: put ? bytes : undefined,
        }).catch((e) => assert.fail(`${method} ${path}: ${e}`));
        assert.ok(r.status >= 400 && r.status < 500, `${method} ${path} gave ${r.status}`);
      }
    }
    const after = Buffer.from(await (await fetch(`${edge.url}/streams/v1/index.json`)).arrayBuffer());
    assert.ok(after.equals(index));
    const pointer = await raw(edge.url, "GET", "/images/../catalog/current.json");
    assert.ok(!pointer.body.toString().includes("index_json"), "the pointer object is never served");
  });

  test("a wrong sha256, a bad header, a changed file or a lying name is refused", async () => {
    const dir = "images/debian/12/amd64/default/20260901_0000";
    const meta = readFileSync(join(root, V1, "incus.tar.xz"));
    const squash = readFileSync(join(root, V1, "rootfs.squashfs"));
    let r = await putFile(edge.url, `${dir}/incus.tar.xz`, meta, { sha: sha256(Buffer.from("other")) });
    assert.equal(r.status, 400);
    assert.match((await r.json()).error, /sha256/);
    assert.equal((await fetch(`${edge.url}/${dir}/incus.tar.xz`)).status, 404, "nothing stored after a wrong sha256");
    r = await putFile(edge.url, `${dir}/incus.tar.xz`, meta, { extra: { "x-checksum-sha256": sha256(Buffer.from("other")) } });
    assert.equal(r.status, 400, "X-Ssgen-Sha256 and X-Checksum-Sha256 disagree");
    assert.match((await r.json()).error, /send one sha256/);
    r = await fetch(`${edge.url}/${dir}/incus.tar.xz`, { method: "PUT", headers: auth, body: meta });
    assert.equal(r.status, 400, "X-Ssgen-Sha256 is required");
    r = await putFile(edge.url, `${dir}/rootfs.squashfs`, meta);
    assert.equal(r.status, 422, "xz bytes named rootfs.squashfs");
    assert.match((await r.json()).error, /squashfs/);
    assert.equal((await fetch(`${edge.url}/${dir}/rootfs.squashfs`)).status, 404);
    r = await putFile(edge.url, `${dir}/incus.tar.xz`, meta, { combined: `incus.tar.xz=${"a".repeat(64)}` });
    assert.equal(r.status, 400, "combined digests only on root files");
    r = await putFile(edge.url, `${dir}/rootfs.squashfs`, squash, { combined: `rootfs.squashfs=${"a".repeat(64)}` });
    assert.equal(r.status, 400, "combined digests must name a metadata file");
    r = await putFile(edge.url, `${dir}/rootfs.squashfs`, squash, { combined: "incus.tar.xz=xyz" });
    assert.equal(r.status, 400);
    // Published bytes never change under a path.
    r = await putFile(edge.url, `${V1}/incus.tar.xz`, Buffer.concat([meta, Buffer.from("x")]));
    assert.equal(r.status, 409);
    // A re-sent combined digest must equal the one the edge computed.
    const rootEntry = (await edgeFiles(edge.url)).get(`${V1}/rootfs.squashfs`);
    const v1meta = readFileSync(join(root, V1, "incus.tar.xz"));
    const v1root = readFileSync(join(root, V1, "rootfs.squashfs"));
    assert.equal(rootEntry.combined["incus.tar.xz"], sha256(Buffer.concat([v1meta, v1root])));
    r = await putFile(edge.url, `${V1}/rootfs.squashfs`, v1root, { combined: `incus.tar.xz=${"b".repeat(64)}` });
    assert.equal(r.status, 400);
    assert.match((await r.json()).error, /is not sha256\(incus\.tar\.xz ‖ rootfs\.squashfs\)/);
    r = await putFile(edge.url, `${V1}/rootfs.squashfs`, v1root, { combined: `incus.tar.xz=${rootEntry.combined["incus.tar.xz"]}` });
    assert.equal(r.status, 200, "the same digest again is fine");
    // R2 needs the length up front: a chunked body is refused.
    const chunked = await raw(edge.url, "PUT", `/${dir}/incus.tar.xz`, {
      headers: { ...auth, "x-ssgen-sha256": sha256(meta), "transfer-encoding": "chunked" }, body: meta });
    assert.equal(chunked.status, 411);
  });
});

describe("publishing", () => {
  test("a publish missing a combined digest is refused and the old catalog stays", async () => {
    const edge = await startEdge();
    try {
      const root = tempDir("tree");
      makeVersion(root, { version: "20260801_0312" });
      await push(root, edge.url, ["--timestamp", String(T)]);
      const before = await (await fetch(`${edge.url}/streams/v1/images.json`)).text();
      const dir = "images/debian/12/amd64/default/20260802_0000";
      const other = tempDir("tree");
      const vdir = makeVersion(other, { version: "20260802_0000" });
      const meta = readFileSync(join(vdir, "incus.tar.xz"));
      const squash = readFileSync(join(vdir, "rootfs.squashfs"));
      // The root before its metadata file: the edge cannot compute the
      // pair's fingerprint when either arrives.
      assert.equal((await putFile(edge.url, `${dir}/rootfs.squashfs`, squash)).status, 201);
      assert.equal((await putFile(edge.url, `${dir}/incus.tar.xz`, meta)).status, 201);
      const p = await publish(edge.url);
      assert.equal(p.status, 409);
      assert.match(p.json.error, /rootfs\.squashfs: no combined fingerprint with incus\.tar\.xz/);
      assert.equal(await (await fetch(`${edge.url}/streams/v1/images.json`)).text(), before);
      // The publisher asks for it, with its own value: the edge computes and checks it.
      const combined = sha256(Buffer.concat([meta, squash]));
      const add = await fetch(`${edge.url}/${dir}/rootfs.squashfs?combined`, {
        method: "POST", headers: { ...auth, "x-ssgen-combined": `incus.tar.xz=${combined}` } });
      assert.equal(add.status, 200);
      assert.equal((await add.json()).combined["incus.tar.xz"], combined);
      const ok = await publish(edge.url);
      assert.equal(ok.status, 200);
      assert.equal(ok.json.generation, 2);
      assert.match(await (await fetch(`${edge.url}/streams/v1/images.json`)).text(), new RegExp(combined));
    } finally {
      await edge.stop();
    }
  });

  test("an upload without publish, or a tree the build refuses, leaves the old catalog served", async () => {
    const edge = await startEdge();
    try {
      const root = tempDir("tree");
      makeVersion(root, { version: "20260801_0312" });
      await push(root, edge.url, ["--timestamp", String(T)]);
      const before = await (await fetch(`${edge.url}/streams/v1/images.json`)).text();
      makeVersion(root, { version: "20260803_0000" });
      await push(root, edge.url, ["--no-publish"]);
      assert.equal(await (await fetch(`${edge.url}/streams/v1/images.json`)).text(), before);
      // A side file the build would refuse is refused at upload, with its
      // reason, and not stored.
      const req = Buffer.from('{"secureboot": true}');
      const refused = await putFile(edge.url, "images/debian/.requirements", req);
      assert.equal(refused.status, 422);
      const why = await refused.json();
      assert.match(why.error, /\.requirements .*not a string.*nothing was stored/, JSON.stringify(why));
      // In parts it could not be checked whole: refused at the start.
      const parted = await multipart(edge.url, "images/debian/.requirements", req).start();
      assert.equal(parted.status, 400);
      assert.match(parted.json.error, /one PUT/, JSON.stringify(parted.json));
      assert.equal((await fetch(`${edge.url}/images/debian/.requirements`)).status, 404);
      // A tree the build refuses (a SHA256SUMS that lies): 422 with its errors.
      const v = "images/debian/12/amd64/default/20260803_0000";
      const sums = Buffer.from(`${"0".repeat(64)}  rootfs.squashfs\n`);
      assert.equal((await putFile(edge.url, `${v}/SHA256SUMS`, sums)).status, 201);
      const p = await publish(edge.url);
      assert.equal(p.status, 422, JSON.stringify(p.json));
      assert.ok(p.json.diagnostics.some((d) => d.level === "error" && d.path === `${v}/rootfs.squashfs`),
        JSON.stringify(p.json));
      assert.equal(await (await fetch(`${edge.url}/streams/v1/images.json`)).text(), before);
    } finally {
      await edge.stop();
    }
  });

  test("a publish killed halfway leaves a whole catalog, old or new, and the next one completes", async () => {
    const persist = tempDir("state");
    const root = tempDir("tree");
    makeVersion(root, { version: "20260801_0312" });
    let edge = await startEdge({ persist });
    await push(root, edge.url, ["--timestamp", String(T)]);
    await edge.stop();
    // Kill workerd at each step of a publish in turn (the Worker's fault
    // point stops the publish there and says so in its log). Before the
    // swap, and after it but before KV got the new index, readers keep the
    // old catalog; once KV has it, the new one. Either is whole.
    const rounds = [["before-swap", "old"], ["after-swap", "old"], ["before-purge", "new"]];
    let expected = ["20260801_0312"];
    for (const [i, [step, which]] of rounds.entries()) {
      edge = await startEdge({ persist });
      const version = `2026090${i + 1}_0000`;
      makeVersion(root, { version });
      await push(root, edge.url, ["--no-publish"]);
      await edge.stop();
      edge = await startEdge({ persist, fault: `hang:${step}` });
      const pending = fetch(`${edge.url}/publish`, { method: "POST", headers: auth }).catch(() => null);
      await edge.waitLog(new RegExp(`fault point ${step}: hanging`));
      await edge.stop("SIGKILL");
      assert.equal(await pending, null, `the publish was cut at ${step}`);
      edge = await startEdge({ persist });
      if (which === "new") expected = [...expected, version].sort();
      const index = await fetch(`${edge.url}/streams/v1/index.json`);
      assert.equal(index.status, 200);
      const indexDoc = await index.json();
      const images = await fetch(`${edge.url}/streams/v1/images.json`);
      assert.equal(images.status, 200);
      const body = Buffer.from(await images.arrayBuffer());
      assert.equal(images.headers.get("etag"), `"${sha256(body)}"`, "the snapshot is whole");
      const doc = JSON.parse(body);
      assert.deepEqual(indexDoc.index.images.products, Object.keys(doc.products).sort());
      assert.deepEqual(Object.keys(doc.products["debian:12:amd64:default"].versions).sort(), expected,
        `killed at ${step}: the ${which} catalog`);
      // The next publish completes whatever the killed one left.
      const done = await publish(edge.url);
      assert.equal(done.status, 200);
      expected = [...new Set([...expected, version])].sort();
      assert.deepEqual(await versions(edge.url), expected);
      await edge.stop();
    }
    // A swap whose copy into KV never happened: readers fall back to the
    // R2 pointer, and the next publish repairs KV.
    edge = await startEdge({ persist });
    const index = Buffer.from(await (await fetch(`${edge.url}/streams/v1/index.json`)).arrayBuffer());
    await edge.stop();
    await withStores(persist, async ({ kv }) => kv.delete("streams/v1/index.json"));
    edge = await startEdge({ persist });
    const fallback = await fetch(`${edge.url}/streams/v1/index.json`);
    assert.equal(fallback.status, 200);
    assert.ok(Buffer.from(await fallback.arrayBuffer()).equals(index));
    assert.equal(fallback.headers.get("etag"), `"${sha256(index)}"`);
    assert.equal((await fetch(`${edge.url}/streams/v1/images.json`)).status, 200);
    assert.equal((await publish(edge.url)).json.changed, false);
    await edge.stop();
    await withStores(persist, async ({ kv }) => assert.ok(await kv.get("streams/v1/index.json")));
  });

  test("concurrent publishers do not lose each other's images", async () => {
    const edge = await startEdge();
    try {
      const a = tempDir("tree-a");
      const b = tempDir("tree-b");
      makeVersion(a, { version: "20260801_0000" });
      await push(a, edge.url);
      let expected = ["20260801_0000"];
      for (let round = 1; round <= 3; round++) {
        const va = `2026081${round}_0000`;
        const vb = `2026082${round}_0000`;
        makeVersion(a, { version: va });
        makeVersion(b, { version: vb, seed: `b${round}` });
        // Two publishers, each with its own new version, at the same time.
        const [ra, rb] = await Promise.all([push(a, edge.url), push(b, edge.url)]);
        for (const [name, r] of [["a", ra], ["b", rb]]) {
          assert.match(r.stderr, /, 2 to upload/, `publisher ${name} sent its new version`);
          assert.match(r.stderr, /published generation \d+ \(1 product\(s\)/, `publisher ${name} published`);
        }
        expected.push(va, vb);
        const doc = await (await fetch(`${edge.url}/streams/v1/images.json`)).json();
        const got = Object.keys(doc.products["debian:12:amd64:default"].versions);
        assert.deepEqual(got.sort(), [...expected].sort(), `round ${round}`);
      }
      // The raw API too: four publishers, each uploading and publishing
      // four versions in turn, interleaved with the others; some swaps are
      // lost and retried from the new listing (`attempts` > 1).
      const c = tempDir("tree-c");
      const prepared = [];
      for (let i = 0; i < 4; i++) {
        for (let k = 0; k < 4; k++) {
          const v = `202610${10 + i * 4 + k}_0000`;
          const vdir = makeVersion(c, { version: v, seed: `c${i}-${k}` });
          prepared.push({ i, v, meta: readFileSync(join(vdir, "incus.tar.xz")), squash: readFileSync(join(vdir, "rootfs.squashfs")) });
          expected.push(v);
        }
      }
      const results = [];
      await Promise.all([0, 1, 2, 3].map(async (i) => {
        for (const p of prepared.filter((x) => x.i === i)) {
          const dir = `images/debian/12/amd64/default/${p.v}`;
          assert.equal((await putFile(edge.url, `${dir}/incus.tar.xz`, p.meta)).status, 201);
          const combined = sha256(Buffer.concat([p.meta, p.squash]));
          assert.equal((await putFile(edge.url, `${dir}/rootfs.squashfs`, p.squash, { combined: `incus.tar.xz=${combined}` })).status, 201);
          const r = await publish(edge.url);
          assert.equal(r.status, 200, JSON.stringify(r.json));
          // What this publisher uploaded is in the catalog its publish left.
          const doc = await (await fetch(`${edge.url}/streams/v1/images.json`)).json();
          assert.ok(p.v in doc.products["debian:12:amd64:default"].versions, `${p.v} lost`);
          results.push(r.json);
        }
      }));
      assert.equal(results.length, 16);
      const doc = await (await fetch(`${edge.url}/streams/v1/images.json`)).json();
      assert.deepEqual(Object.keys(doc.products["debian:12:amd64:default"].versions).sort(), [...expected].sort());
    } finally {
      await edge.stop();
    }
  });

  test("another publisher's root stored but not yet paired waits, and blocks no publish", async () => {
    // The fault point holds a PUT after its root file is stored and before
    // the edge records the file's combined fingerprint: a publish then sees
    // a root without one, as it can for a moment whenever two publishers
    // overlap. That version waits; the rest is published.
    const persist = tempDir("state");
    let edge = await startEdge({ persist });
    const dir = "images/debian/12/amd64/default/20260802_0000";
    let meta, squash;
    try {
      const root = tempDir("tree");
      makeVersion(root, { version: "20260801_0312" });
      await push(root, edge.url, ["--timestamp", String(T)]);
      const vdir = makeVersion(tempDir("tree"), { version: "20260802_0000" });
      meta = readFileSync(join(vdir, "incus.tar.xz"));
      squash = readFileSync(join(vdir, "rootfs.squashfs"));
    } finally {
      await edge.stop();
    }
    edge = await startEdge({ persist, fault: "hang:after-root" });
    const combined = sha256(Buffer.concat([meta, squash]));
    try {
      assert.equal((await putFile(edge.url, `${dir}/incus.tar.xz`, meta)).status, 201);
      const held = putFile(edge.url, `${dir}/rootfs.squashfs`, squash, { combined: `incus.tar.xz=${combined}` })
        .catch(() => null);
      await edge.waitLog(/ssgen fault point after-root: hanging/);
      const p = await publish(edge.url);
      assert.equal(p.status, 200, JSON.stringify(p.json));
      assert.ok(
        p.json.diagnostics.some((d) => d.path === `${dir}/rootfs.squashfs` && /still computing its combined fingerprint/.test(d.message)),
        JSON.stringify(p.json.diagnostics));
      assert.deepEqual(await versions(edge.url), ["20260801_0312"]);
      // A publisher that requires the waiting file is told, and nothing changes.
      const required = await publish(edge.url, "", JSON.stringify({ require: { [`${dir}/rootfs.squashfs`]: sha256(squash) } }));
      assert.equal(required.status, 409, JSON.stringify(required.json));
      assert.deepEqual(await versions(edge.url), ["20260801_0312"]);
      await edge.stop("SIGKILL");
      await held;
    } finally {
      await edge.stop();
    }
    // The Worker died before the record: sending the root again pairs it.
    edge = await startEdge({ persist });
    try {
      const again = await putFile(edge.url, `${dir}/rootfs.squashfs`, squash, { combined: `incus.tar.xz=${combined}` });
      assert.equal(again.status, 200);
      assert.equal((await publish(edge.url)).status, 200);
      assert.deepEqual((await versions(edge.url)).sort(), ["20260801_0312", "20260802_0000"]);
    } finally {
      await edge.stop();
    }
  });

  test("a publish that loses the swap builds again from the new listing", async () => {
    // The Worker's fault point holds the first publish between its build and
    // its swap until another publish has swapped: the first one's swap is
    // lost for certain, and it must start over and keep both versions.
    const edge = await startEdge({ fault: "yield:before-swap" });
    try {
      const root = tempDir("tree");
      makeVersion(root, { version: "20260801_0000" });
      await push(root, edge.url, ["--no-publish"]);
      const first = publish(edge.url);
      await edge.waitLog(/fault point before-swap: waiting for another publish/);
      const other = tempDir("tree");
      const vdir = makeVersion(other, { version: "20260802_0000", seed: "other" });
      const dir = "images/debian/12/amd64/default/20260802_0000";
      assert.equal((await putFile(edge.url, `${dir}/incus.tar.xz`, readFileSync(join(vdir, "incus.tar.xz")))).status, 201);
      assert.equal((await putFile(edge.url, `${dir}/rootfs.squashfs`, readFileSync(join(vdir, "rootfs.squashfs")))).status, 201);
      const second = await publish(edge.url);
      assert.equal(second.status, 200);
      assert.equal(second.json.attempts, 1);
      const lost = await first;
      assert.equal(lost.status, 200, JSON.stringify(lost.json));
      assert.ok(lost.json.attempts >= 2, `the held publish lost its swap and retried (attempts ${lost.json.attempts})`);
      assert.ok(lost.json.generation > second.json.generation || !lost.json.changed);
      assert.deepEqual(await versions(edge.url), ["20260801_0000", "20260802_0000"]);
    } finally {
      await edge.stop();
    }
  });

  test("a removed file leaves the catalog at once and R2 after the grace period", async () => {
    const edge = await startEdge({ grace: "2" });
    try {
      const root = tempDir("tree");
      makeVersion(root, { version: "20260801_0312" });
      makeVersion(root, { version: "20260802_0312" });
      await push(root, edge.url);
      const gone = "images/debian/12/amd64/default/20260802_0312/rootfs.squashfs";
      const d = await fetch(`${edge.url}/${gone}`, { method: "DELETE", headers: auth });
      assert.equal(d.status, 202);
      assert.equal((await fetch(`${edge.url}/images/debian/12/amd64/default/nope/x`, { method: "DELETE", headers: auth })).status, 404);
      let p = await publish(edge.url);
      assert.equal(p.status, 200);
      let doc = await (await fetch(`${edge.url}/streams/v1/images.json`)).json();
      assert.deepEqual(Object.keys(doc.products["debian:12:amd64:default"].versions), ["20260801_0312"]);
      assert.equal((await fetch(`${edge.url}/${gone}`)).status, 200, "still downloadable during the grace period");
      await new Promise((r) => setTimeout(r, 2500));
      p = await publish(edge.url);
      assert.equal(p.status, 200);
      assert.deepEqual(p.json.purged, [gone]);
      assert.equal((await fetch(`${edge.url}/${gone}`)).status, 404, "deleted after the grace period");
      // Pushing the tree again brings the version back.
      await push(root, edge.url);
      doc = await (await fetch(`${edge.url}/streams/v1/images.json`)).json();
      assert.equal(Object.keys(doc.products["debian:12:amd64:default"].versions).length, 2);
      // `push --delete` mirrors a version removed from the tree.
      rmSync(join(root, "images/debian/12/amd64/default/20260801_0312"), { recursive: true });
      const del = await push(root, edge.url, ["--delete"]);
      assert.match(del.stderr, /2 file\(s\) removed/);
      doc = await (await fetch(`${edge.url}/streams/v1/images.json`)).json();
      assert.deepEqual(Object.keys(doc.products["debian:12:amd64:default"].versions), ["20260802_0312"]);
      assert.equal((await fetch(`${edge.url}/${V1}/incus.tar.xz`)).status, 200, "kept for the grace period");
    } finally {
      await edge.stop();
    }
  });

  test("a file too large for one request goes up in parts, checked whole by the edge", async () => {
    const persist = tempDir("state");
    let edge = await startEdge({ persist });
    try {
      const root = tempDir("tree");
      const vdir = makeVersion(root, { version: "20260801_0312" });
      // 12 MiB root: with 5 MiB parts, three parts (5, 5, 2 MiB).
      const big = Buffer.alloc(12 << 20);
      for (let i = 0; i < big.length; i += 512) big.writeUInt32LE((i ^ 0x9e3779b9) >>> 0, i);
      big.write("hsqs", 0);
      writeFileSync(join(vdir, "rootfs.squashfs"), big);
      const r = await push(root, edge.url, ["--part-size", "5", "--timestamp", String(T)]);
      assert.match(r.stderr, /2 to upload/);
      const built = await buildImagesJson(root, T);
      const images = Buffer.from(await (await fetch(`${edge.url}/streams/v1/images.json`)).arrayBuffer());
      assert.ok(images.equals(built.images));
      const got = Buffer.from(await (await fetch(`${edge.url}/${V1}/rootfs.squashfs`)).arrayBuffer());
      assert.ok(got.equals(big));

      // Parts that do not add up to the announced file are thrown away.
      const key = "images/debian/12/amd64/default/20260802_0000/rootfs.squashfs";
      const start = await fetch(`${edge.url}/${key}?uploads`, {
        method: "POST",
        headers: { ...auth, "x-ssgen-sha256": sha256(big), "x-ssgen-size": String(big.length) },
      });
      assert.equal(start.status, 200);
      const id = encodeURIComponent((await start.json()).upload_id);
      const wrong = Buffer.from(big);
      wrong[7 << 20] ^= 1;
      const parts = [];
      for (const [n, a, b] of [[1, 0, 5 << 20], [2, 5 << 20, 10 << 20], [3, 10 << 20, 12 << 20]]) {
        const p = await fetch(`${edge.url}/${key}?upload_id=${id}&part=${n}`, {
          method: "PUT", headers: auth, body: wrong.subarray(a, b) });
        assert.equal(p.status, 200);
        parts.push({ part: n, etag: (await p.json()).etag });
      }
      const done = await fetch(`${edge.url}/${key}?upload_id=${id}`, {
        method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ parts }) });
      assert.equal(done.status, 400);
      assert.match((await done.json()).error, /not the announced file/);
      assert.equal((await fetch(`${edge.url}/${key}`)).status, 404);
      assert.equal((await fetch(`${edge.url}/${key}?uploads`, { method: "POST", headers: { "x-ssgen-sha256": sha256(big) } })).status, 401);

      // An upload whose completion never came (the client or the Worker
      // died) leaves the path as it was: out of the catalog, and the next
      // push sends the file again.
      const v3 = "images/debian/12/amd64/default/20260803_0000";
      const vdir3 = makeVersion(root, { version: "20260803_0000" });
      const big3 = Buffer.from(big);
      big3.write("v3", 100);
      writeFileSync(join(vdir3, "rootfs.squashfs"), big3);
      assert.equal((await putFile(edge.url, `${v3}/incus.tar.xz`, readFileSync(join(vdir3, "incus.tar.xz")))).status, 201);
      const half = multipart(edge.url, `${v3}/rootfs.squashfs`, big3);
      assert.equal((await half.start()).status, 200);
      await half.parts();
      await edge.stop("SIGKILL");
      edge = await startEdge({ persist });
      assert.equal((await fetch(`${edge.url}/${v3}/rootfs.squashfs`)).status, 404);
      const p = await publish(edge.url, `?timestamp=${T}`);
      assert.equal(p.status, 200);
      assert.deepEqual(await versions(edge.url), ["20260801_0312"], "the half-uploaded version is left out");
      const again = await push(root, edge.url, ["--part-size", "5", "--timestamp", String(T)]);
      assert.match(again.stderr, /1 to upload/);
      const built3 = await buildImagesJson(root, T);
      const back = Buffer.from(await (await fetch(`${edge.url}/streams/v1/images.json`)).arrayBuffer());
      assert.ok(back.equals(built3.images));
    } finally {
      await edge.stop();
    }
  });

  test("a push killed halfway resumes where it stopped, and the old catalog is served meanwhile", async () => {
    const edge = await startEdge();
    try {
      const root = tempDir("tree");
      makeVersion(root, { version: "20260801_0312" });
      await push(root, edge.url, ["--timestamp", String(T)]);
      const before = await (await fetch(`${edge.url}/streams/v1/images.json`)).text();
      // Four new versions, each with a 12 MiB root sent in 5 MiB parts.
      for (let i = 1; i <= 4; i++) {
        const vdir = makeVersion(root, { version: `2026090${i}_0000` });
        const big = Buffer.alloc(12 << 20, i);
        big.write("hsqs", 0);
        writeFileSync(join(vdir, "rootfs.squashfs"), big);
      }
      const child = spawn(SSGEN, ["push", root, "--to", edge.url, "--token", TOKEN, "--part-size", "5", "--timestamp", String(T)],
        { stdio: "ignore" });
      const exited = new Promise((r) => child.once("exit", r));
      // Kill it once some, not all, of the new files have arrived.
      for (;;) {
        const files = (await (await fetch(`${edge.url}/api/v1/files`, { headers: auth })).json()).files;
        if (files.length >= 4) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      child.kill("SIGKILL");
      await exited;
      assert.equal(await (await fetch(`${edge.url}/streams/v1/images.json`)).text(), before, "nothing published yet");
      const held = (await (await fetch(`${edge.url}/api/v1/files`, { headers: auth })).json()).files.length;
      assert.ok(held < 10, `the push was killed before it finished (${held} files held)`);
      const resumed = await push(root, edge.url, ["--part-size", "5", "--timestamp", String(T)]);
      const todo = Number(resumed.stderr.match(/(\d+) to upload/)[1]);
      assert.ok(todo > 0 && todo < 8, `resumed with ${todo} of 8 new files left`);
      const built = await buildImagesJson(root, T);
      const images = Buffer.from(await (await fetch(`${edge.url}/streams/v1/images.json`)).arrayBuffer());
      assert.ok(images.equals(built.images));
    } finally {
      await edge.stop();
    }
  });

  test("without an UPLOAD_TOKEN secret uploads are disabled", async () => {
    const edge = await startEdge({ token: "" });
    try {
      const r = await fetch(`${edge.url}/publish`, { method: "POST", headers: { authorization: "Bearer " } });
      assert.equal(r.status, 503);
      assert.match((await r.json()).error, /UPLOAD_TOKEN/);
    } finally {
      await edge.stop();
    }
  });
});
