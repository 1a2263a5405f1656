// The serving contract the Worker shares with `ssgen serve`
// (ssgen_core::serve), under the real Workers runtime (workerd, through
// Miniflare 4): the cache policy of each kind of path, the checksum
// headers, what an upload may be and which bytes are refused, the page for
// people at /, and a private feed (READ_TOKENS). Run by tests/edge/run.sh.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import {
  auth, edgeFiles, makeVersion, multipart, push, putFile, sha256, ssgen, startEdge, tempDir,
} from "./lib.mjs";

const T = 1785556800;
const PRODUCT = "images/debian/12/amd64/default";
const V1 = `${PRODUCT}/20260801_0312`;
const READ = "reader-token-0123456789abcdef";

/** A tree with a split image, a unified one and side files. */
function tree() {
  const root = tempDir("tree");
  makeVersion(root, { version: "20260801_0312" });
  makeVersion(root, { os: "alpine", release: "3.20", version: "20260801_0000", unified: true });
  writeFileSync(join(root, PRODUCT, "metadata.json"), '{"aliases": ["deb"]}');
  writeFileSync(join(root, "images", "debian", ".requirements"), '{"secureboot": "false"}');
  return root;
}

/** Every fingerprint the catalog gives an image: the combined ones of
 * split images, the sha256 of unified tarballs. */
function fingerprints(images) {
  const out = new Set();
  for (const p of Object.values(images.products)) {
    for (const v of Object.values(p.versions)) {
      for (const item of Object.values(v.items)) {
        for (const [k, val] of Object.entries(item)) {
          if (/^combined_.*sha256$/.test(k) && val) out.add(val);
        }
        if (/_combined\.tar\.gz$/.test(item.path)) out.add(item.sha256);
      }
    }
  }
  return out;
}

describe("the serving contract", () => {
  let edge;
  let root;
  before(async () => {
    root = tree();
    edge = await startEdge();
    await push(root, edge.url, ["--timestamp", String(T)]);
  });
  after(async () => edge?.stop());

  test("image files are immutable for a year, side files five minutes, the catalog a minute and cross-origin", async () => {
    const cache = async (rel, headers = {}) => {
      const r = await fetch(`${edge.url}/${rel}`, { headers });
      assert.equal(r.status, headers.range ? 206 : 200, `/${rel}: ${r.status}`);
      return r.headers;
    };
    for (const f of ["incus.tar.xz", "rootfs.squashfs"]) {
      assert.equal((await cache(`${V1}/${f}`)).get("cache-control"), "public, max-age=31536000, immutable", f);
      // The one-call path (a Range, no condition) says the same.
      assert.equal((await cache(`${V1}/${f}`, { range: "bytes=0-3" })).get("cache-control"),
        "public, max-age=31536000, immutable", f);
    }
    assert.equal((await cache(`${PRODUCT}/metadata.json`)).get("cache-control"), "public, max-age=300");
    assert.equal((await cache("images/debian/.requirements")).get("cache-control"), "public, max-age=300");
    for (const doc of ["streams/v1/index.json", "streams/v1/images.json"]) {
      const h = await cache(doc, { origin: "https://page.example" });
      assert.equal(h.get("cache-control"), "public, max-age=60");
      assert.equal(h.get("access-control-allow-origin"), "*");
    }
    const direct = await fetch(`${edge.url}/aliases/alpine/3.20`, { method: "HEAD" });
    assert.equal(direct.status, 200);
    assert.equal(direct.headers.get("cache-control"), "public, max-age=60", "direct-URL answers, as ssgen serve");
  });

  test("the page for people at / is the core's page of the catalog, with the headers ssgen serve sends", async () => {
    const r = await fetch(`${edge.url}/`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(r.headers.get("cache-control"), "public, max-age=60");
    assert.equal(r.headers.get("content-security-policy"),
      "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'");
    assert.equal(r.headers.get("x-content-type-options"), "nosniff");
    const page = await r.text();
    const images = await (await fetch(`${edge.url}/streams/v1/images.json`)).json();
    const want = fingerprints(images);
    assert.ok(want.size >= 2, `${want.size} fingerprints`);
    // The page sets a fingerprint's short form apart in a span.
    const plain = page.replace(/<\/?span>/g, "");
    for (const fp of want) assert.ok(plain.includes(fp), `the page lacks ${fp}`);
    const shown = new Set(plain.match(/\b[0-9a-f]{64}\b/g) ?? []);
    for (const fp of shown) assert.ok(want.has(fp), `the page shows ${fp}, which the catalog does not give`);
    const host = new URL(edge.url).host;
    assert.ok(page.includes(`remote add`) && page.includes(`https://${host}`), "the copy lines name this server");
    // The same bytes as ssgen build --html writes for that URL.
    const copy = tempDir("html");
    cpSync(join(root, "images"), join(copy, "images"), { recursive: true });
    const built = await ssgen(["build", copy, "--deltas", "0", "--timestamp", String(T), "--html", "--url", `https://${host}`]);
    assert.equal(built.code, 0, built.stderr);
    assert.equal(page, readFileSync(join(copy, "index.html"), "utf8"), "the page differs from ssgen build --html");
    const index = await fetch(`${edge.url}/index.html`);
    assert.equal(await index.text(), page);
    const etag = r.headers.get("etag");
    assert.equal((await fetch(`${edge.url}/`, { headers: { "if-none-match": etag } })).status, 304);
    const head = await fetch(`${edge.url}/`, { method: "HEAD" });
    assert.equal(head.headers.get("content-length"), String(Buffer.byteLength(page)));
  });

  test("X-Checksum-Sha256 is taken as X-Ssgen-Sha256 is, in either case", async () => {
    const dir = `${PRODUCT}/20260901_0000`;
    const meta = readFileSync(join(root, V1, "incus.tar.xz"));
    const put = (headers) => fetch(`${edge.url}/${dir}/incus.tar.xz`, { method: "PUT", headers: { ...auth, ...headers }, body: meta });
    const r = await put({ "x-checksum-sha256": sha256(meta).toUpperCase() });
    assert.equal(r.status, 201, await r.text());
    assert.equal((await put({ "x-checksum-sha256": sha256(meta), "x-ssgen-sha256": sha256(meta) })).status, 200);
    // At an absent path: at this one, other bytes would be a 409 first.
    const wrong = await fetch(`${edge.url}/${PRODUCT}/20260904_0000/incus.tar.xz`, {
      method: "PUT", headers: { ...auth, "x-checksum-sha256": sha256(Buffer.from("other")) }, body: meta,
    });
    assert.equal(wrong.status, 400, "R2 refuses a body whose sha256 is not the one announced");
  });

  test("a metadata tarball the build refuses is refused, and nothing is stored", async () => {
    const dir = `${PRODUCT}/20260902_0000`;
    const meta = readFileSync(join(root, V1, "incus.tar.xz"));
    const rootfs = readFileSync(join(root, V1, "rootfs.squashfs"));
    // A compressed tarball without metadata.yaml: the daemons refuse it.
    const work = tempDir("bad");
    mkdirSync(join(work, "x"));
    writeFileSync(join(work, "x", "README"), "no metadata here\n");
    execFileSync("tar", ["-cJf", join(work, "no-yaml.tar.xz"), "-C", join(work, "x"), "README"]);
    const noYaml = readFileSync(join(work, "no-yaml.tar.xz"));
    const cut = meta.subarray(0, meta.length - 20);
    for (const [name, bytes, why] of [
      ["incus.tar.xz", cut, /cut short/],
      ["lxd.tar.xz", noYaml, /metadata\.yaml/],
      ["lxd.tar.xz", rootfs, /not a compressed tarball/],
    ]) {
      const r = await putFile(edge.url, `${dir}/${name}`, bytes);
      assert.equal(r.status, 422, `${name}: ${r.status}`);
      assert.match((await r.json()).error, why);
      assert.equal((await fetch(`${edge.url}/${dir}/${name}`)).status, 404, `${name} was stored`);
    }
    // The same check at the end of a multipart upload.
    const up = multipart(edge.url, `${dir}/incus.tar.xz`, cut);
    assert.equal((await up.start()).status, 200);
    await up.parts();
    const done = await up.complete();
    assert.equal(done.status, 422, JSON.stringify(done.json));
    assert.match(done.json.error, /cut short/);
    assert.equal((await fetch(`${edge.url}/${dir}/incus.tar.xz`)).status, 404);
    const held = await edgeFiles(edge.url);
    for (const path of held.keys()) assert.ok(!path.startsWith(`${dir}/`), `${path} is held`);
  });

  test("uploads a build would never publish are refused with its reason", async () => {
    const meta = readFileSync(join(root, V1, "incus.tar.xz"));
    for (const [rel, why] of [
      [`${PRODUCT}/latest/incus.tar.xz`, /YYYYMMDD/],
      [`${PRODUCT}/20260903_0000/notes.txt`, /never publishes/],
      ["images/debian/12/x86-64/default/20260903_0000/incus.tar.xz", /x86-64/],
      [`${PRODUCT}/20260903_0000/.requirements`, /belongs in/],
    ]) {
      const r = await putFile(edge.url, rel, meta);
      assert.equal(r.status, 400, rel);
      assert.match((await r.json()).error, why, rel);
    }
  });

  test("a Range is read by the grammar, as ssgen serve reads it", async () => {
    const rel = `${V1}/rootfs.squashfs`;
    const whole = Buffer.from(await (await fetch(`${edge.url}/${rel}`)).arrayBuffer());
    let r = await fetch(`${edge.url}/${rel}`, { headers: { range: "Bytes=0-3" } });
    assert.equal(r.status, 206, "the unit is case-insensitive");
    assert.ok(Buffer.from(await r.arrayBuffer()).equals(whole.subarray(0, 4)));
    r = await fetch(`${edge.url}/${rel}`, { headers: { range: "bytes=- 0" } });
    assert.equal(r.status, 200, "no whitespace inside a range: ignored");
    assert.equal(Buffer.from(await r.arrayBuffer()).length, whole.length);
    r = await fetch(`${edge.url}/${rel}`, {
      headers: { "if-modified-since": "Sunday, 06-Nov-94 08:49:37 GMT" } });
    assert.equal(r.status, 200, "an RFC 850 date");
    r = await fetch(`${edge.url}/${rel}`, { headers: { "if-modified-since": "Fri Dec 31 23:59:59 9999" } });
    assert.equal(r.status, 304, "an asctime date");
  });
});

describe("a private feed (READ_TOKENS)", () => {
  let edge;
  let root;
  before(async () => {
    root = tree();
    edge = await startEdge({ readTokens: `# readers\n${READ}\n` });
    await push(root, edge.url, ["--timestamp", String(T)]);
  });
  after(async () => edge?.stop());

  test("reads are answered only under a token; the page and direct-URL import keep it", async () => {
    const base = `${edge.url}/${READ}`;
    for (const rel of ["streams/v1/index.json", "streams/v1/images.json", `${V1}/rootfs.squashfs`,
      `${PRODUCT}/metadata.json`, "", "index.html", "aliases/alpine/3.20"]) {
      const bare = await fetch(`${edge.url}/${rel}`);
      assert.equal(bare.status, 404, `/${rel} without a token`);
      assert.doesNotMatch(await bare.text(), /debian:12|squashfs"/);
      const wrong = await fetch(`${edge.url}/${READ}x/${rel}`);
      assert.equal(wrong.status, 404, `/${rel} under a wrong token`);
      const r = await fetch(`${base}/${rel}`);
      assert.equal(r.status, 200, `/${READ}/${rel}: ${r.status}`);
      if (rel.startsWith("streams/v1/")) {
        assert.equal(r.headers.get("access-control-allow-origin"), "*", `/${READ}/${rel} is cross-origin`);
      }
    }
    // Extra slashes reach the same files, as in ssgen serve: one form of a path.
    for (const odd of [`${edge.url}//${READ}/streams/v1/index.json`, `${base}//streams/v1/index.json`]) {
      assert.equal((await fetch(odd)).status, 200, odd);
    }
    const file = Buffer.from(await (await fetch(`${base}/${V1}/rootfs.squashfs`)).arrayBuffer());
    assert.ok(file.equals(readFileSync(join(root, V1, "rootfs.squashfs"))));
    const host = new URL(edge.url).host;
    const page = await (await fetch(`${base}/`)).text();
    assert.ok(page.includes(`https://${host}/${READ}`), "the page's remote URL has the token");
    const direct = await fetch(`${base}/aliases/alpine/3.20`, { method: "HEAD" });
    const url = direct.headers.get("incus-image-url");
    assert.equal(url, `${base}/images/alpine/3.20/amd64/default/20260801_0000/incus_combined.tar.gz`);
    assert.equal((await fetch(url, { method: "HEAD" })).status, 200);
  });

  test("the upload API stays at the root behind its own token", async () => {
    // Without the upload token the listing is not there, as in ssgen serve.
    for (const headers of [{}, { authorization: `Bearer ${READ}` }]) {
      const bare = await fetch(`${edge.url}/api/v1/files`, { headers });
      assert.equal(bare.status, 404);
      assert.doesNotMatch(await bare.text(), /images\//);
    }
    const none = await fetch(`${edge.url}/${READ}/api/v1/files`, { headers: auth });
    assert.equal(none.status, 404, "not through a read token");
    const listed = await edgeFiles(edge.url);
    assert.ok(listed.has(`${V1}/rootfs.squashfs`));
    const again = await push(root, edge.url, ["--timestamp", String(T)]);
    assert.match(again.stderr, /0 to upload/);
  });

  test("a READ_TOKENS secret that holds a bad token closes the feed", async () => {
    const bad = await startEdge({ readTokens: "short\n" });
    try {
      for (const rel of ["streams/v1/index.json", "short/streams/v1/index.json"]) {
        const r = await fetch(`${bad.url}/${rel}`);
        assert.equal(r.status, 503, rel);
        assert.match((await r.json()).error, /READ_TOKENS/);
        assert.doesNotMatch((await (await fetch(`${bad.url}/${rel}`)).text()), /"short"/);
      }
    } finally {
      await bad.stop();
    }
  });
});

