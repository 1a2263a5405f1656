// The edge and `ssgen push` abused: races between uploads, purges and
// publishes, lying publishers and lying proxies, and client mistakes. Each
// test runs the real handler under workerd (Miniflare 4, KV and R2 on disk)
// over loopback, is bounded in count and time, and waits on answers and log
// lines, never on a guess of how long something takes. Run by
// tests/edge/run.sh.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { describe, test } from "node:test";

import {
  SSGEN, TOKEN, auth, buildImagesJson, edgeFiles, lyingProxy, makeVersion, multipart, publish, push, putFile, raw,
  sha256, ssgen, startEdge, tempDir, versions, withStores,
} from "./lib.mjs";

const T = 1785556800;
const PRODUCT = "images/debian/12/amd64/default";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** One version's real files, made in a scratch tree. */
function files(version, seed = version, opts = {}) {
  const dir = makeVersion(tempDir("files"), { version, seed, ...opts });
  return {
    path: `${PRODUCT}/${version}`,
    meta: readFileSync(join(dir, "incus.tar.xz")),
    root: readFileSync(join(dir, "rootfs.squashfs")),
  };
}

/** The X-Ssgen-Combined claim of a root beside `meta` (what push sends). */
const claim = (meta, root) => `incus.tar.xz=${sha256(Buffer.concat([meta, root]))}`;

/** A squashfs-looking file of `size` bytes whose contents depend on `seed`. */
function bigRoot(size, seed) {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4096) b.writeUInt32LE((i * 2654435761 + seed) >>> 0, i);
  b.write("hsqs", 0);
  return b;
}

async function withEdge(opts, fn) {
  const edge = await startEdge(opts);
  try {
    return await fn(edge);
  } finally {
    await edge.stop();
  }
}

const text = async (base, path) => (await fetch(`${base}/${path}`)).text();
const get = async (base, path) => {
  const r = await fetch(`${base}/${path}`);
  return { status: r.status, body: Buffer.from(await r.arrayBuffer()) };
};
const del = (base, path) => fetch(`${base}/${path}`, { method: "DELETE", headers: auth });

describe("multipart completion on published keys", () => {
  test("a failed completion leaves the published file served, and its catalog whole", () =>
    withEdge({}, async (edge) => {
      const v = files("20260801_0312");
      assert.equal((await putFile(edge.url, `${v.path}/incus.tar.xz`, v.meta)).status, 201);
      assert.equal((await putFile(edge.url, `${v.path}/rootfs.squashfs`, v.root, { combined: claim(v.meta, v.root) })).status, 201);
      assert.equal((await publish(edge.url, `?timestamp=${T}`)).status, 200);
      const catalog = await text(edge.url, "streams/v1/images.json");
      const key = `${v.path}/rootfs.squashfs`;
      const garbage = bigRoot(v.root.length, 7);

      // The published root sent again with its real sha256 and size, a
      // combined claim naming a metadata file the edge does not hold yet,
      // and garbage for bytes: the published file stays.
      let up = multipart(edge.url, key, garbage, { sha: sha256(v.root), size: v.root.length,
        combined: `${claim(v.meta, v.root)}, lxd.tar.xz=${"a".repeat(64)}` });
      let r = await up.start();
      if (r.status === 200) {
        await up.parts();
        await up.complete();
      }
      let got = await get(edge.url, key);
      assert.equal(got.status, 200, "the published file is still served");
      assert.ok(got.body.equals(v.root));
      // (It never got that far: the claim is refused before any upload.)
      assert.equal(r.status, 409, JSON.stringify(r.json));
      assert.match(r.json.error, /lxd\.tar\.xz, which the edge does not hold: upload the metadata file/);

      // The published root, removed and sent again as garbage with its real
      // sha256 and size: the check fails, and the published file is untouched.
      assert.equal((await del(edge.url, key)).status, 202);
      up = multipart(edge.url, key, garbage, { sha: sha256(v.root), size: v.root.length });
      r = await up.start();
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.match(r.json.upload_id, /^[0-9a-f]{32}$/, "a re-upload of a removed file sends its bytes");
      await up.parts();
      r = await up.complete();
      assert.equal(r.status, 400);
      assert.match(r.json.error, /not the announced file .*nothing was stored/);
      got = await get(edge.url, key);
      assert.equal(got.status, 200, "the published file is still served");
      assert.ok(got.body.equals(v.root));
      assert.equal(await text(edge.url, "streams/v1/images.json"), catalog);
      // The upload is gone with its check: completing it again is a 404.
      assert.equal((await up.complete()).status, 404);

      // Parts that do not join: refused, and the file is still there.
      up = multipart(edge.url, key, v.root, { combined: claim(v.meta, v.root) });
      assert.equal((await up.start()).status, 200);
      await up.parts();
      const bad = await fetch(`${edge.url}/${key}?upload_id=${up.id}`, {
        method: "POST", headers: { ...auth, "content-type": "application/json" },
        body: JSON.stringify({ parts: [{ part: 1, etag: "not-an-etag" }] }) });
      assert.equal(bad.status, 400);
      assert.ok((await get(edge.url, key)).body.equals(v.root));
      // The right bytes complete: the removed file is back.
      r = await up.complete();
      assert.equal(r.status, 201, JSON.stringify(r.json));
      assert.equal(r.json.stored, true);
      const held = (await edgeFiles(edge.url)).get(key);
      assert.ok(!held.removed && !held.purged, "the re-upload took the file back");
      assert.equal((await publish(edge.url, `?timestamp=${T}`)).status, 200);
      assert.equal(await text(edge.url, "streams/v1/images.json"), catalog);

      // Other bytes under a published path: refused at the start.
      up = multipart(edge.url, key, garbage);
      assert.equal((await up.start()).status, 409);
      assert.ok((await get(edge.url, key)).body.equals(v.root));
    }));
});

describe("racing multipart and PUT", () => {
  test("a multipart upload started on an absent path cannot replace what a PUT stored meanwhile", () =>
    withEdge({}, async (edge) => {
      const a = files("20260801_0312", "a");
      const b = files("20260801_0312", "b");
      assert.notEqual(sha256(a.root), sha256(b.root));
      const key = `${a.path}/rootfs.squashfs`;
      assert.equal((await putFile(edge.url, `${b.path}/incus.tar.xz`, b.meta)).status, 201);
      const upA = multipart(edge.url, key, a.root, { combined: claim(b.meta, a.root) });
      assert.equal((await upA.start()).status, 200);
      await upA.parts();
      assert.equal((await putFile(edge.url, key, b.root, { combined: claim(b.meta, b.root) })).status, 201);
      assert.equal((await publish(edge.url)).status, 200);
      const catalog = await text(edge.url, "streams/v1/images.json");
      assert.match(catalog, new RegExp(sha256(b.root)));
      const r = await upA.complete();
      assert.equal(r.status, 409, JSON.stringify(r.json));
      assert.match(r.json.error, /already holds other bytes/);
      assert.ok((await get(edge.url, key)).body.equals(b.root), "the path serves what the catalog lists");
      assert.equal((await edgeFiles(edge.url)).get(key).sha256, sha256(b.root));
      assert.equal((await publish(edge.url)).json.changed, false);
      assert.equal(await text(edge.url, "streams/v1/images.json"), catalog);
    }));

  test("of two writers of different bytes at an absent path, exactly one wins", () =>
    withEdge({}, async (edge) => {
      const a = files("20260801_0312", "a");
      const b = files("20260801_0312", "b");
      for (let round = 0; round < 6; round++) {
        const key = `${PRODUCT}/2026092${round}_0000/rootfs.squashfs`;
        const [ra, rb] = await Promise.all([putFile(edge.url, key, a.root), putFile(edge.url, key, b.root)]);
        const statuses = [ra.status, rb.status].sort();
        assert.deepEqual(statuses, [201, 409], `round ${round}: ${statuses}`);
        const winner = ra.status === 201 ? a.root : b.root;
        assert.ok((await get(edge.url, key)).body.equals(winner), `round ${round}: the path serves the winner`);
      }
      // Two multipart uploads: the first to complete wins, the other is refused.
      const key = `${PRODUCT}/20260910_0000/rootfs.squashfs`;
      const upA = multipart(edge.url, key, a.root);
      const upB = multipart(edge.url, key, b.root);
      await upA.start();
      await upB.start();
      await upA.parts();
      await upB.parts();
      assert.equal((await upB.complete()).status, 201);
      assert.equal((await upA.complete()).status, 409);
      assert.ok((await get(edge.url, key)).body.equals(b.root));
    }));
});

describe("purge timing across refused publishes", () => {
  test("the grace period counts from the publish that withdrew the file, and a refused publish deletes nothing", () =>
    withEdge({ grace: "2" }, async (edge) => {
      const v1 = files("20260801_0312");
      const v2 = files("20260802_0312");
      for (const v of [v1, v2]) {
        assert.equal((await putFile(edge.url, `${v.path}/incus.tar.xz`, v.meta)).status, 201);
        assert.equal((await putFile(edge.url, `${v.path}/rootfs.squashfs`, v.root, { combined: claim(v.meta, v.root) })).status, 201);
      }
      assert.equal((await publish(edge.url)).status, 200);
      const gone = [`${v2.path}/incus.tar.xz`, `${v2.path}/rootfs.squashfs`];
      for (const p of gone) assert.equal((await del(edge.url, p)).status, 202);
      // Past the grace period with no publish: the catalog clients hold
      // still lists the files, so nothing may go yet.
      await sleep(2500);
      let p = await publish(edge.url);
      assert.equal(p.status, 200);
      assert.deepEqual(await versions(edge.url), ["20260801_0312"]);
      assert.deepEqual(p.json.purged, [], "nothing purged by the publish that withdrew the files");
      assert.deepEqual(p.json.withdrawn.sort(), gone.sort());
      for (const f of gone) assert.equal((await get(edge.url, f)).status, 200, `${f} stays for the grace period`);
      const served = await text(edge.url, "streams/v1/images.json");

      // Past the grace period since that publish, a refused publish (a
      // root without its combined fingerprint, 409) deletes nothing, and a
      // broken .requirements is refused at upload (422).
      await sleep(2500);
      const v3 = files("20260803_0312");
      assert.equal((await putFile(edge.url, `${v3.path}/rootfs.squashfs`, v3.root)).status, 201);
      assert.equal((await putFile(edge.url, `${v3.path}/incus.tar.xz`, v3.meta)).status, 201);
      p = await publish(edge.url);
      assert.equal(p.status, 409);
      for (const f of gone) assert.equal((await get(edge.url, f)).status, 200, `${f} kept by the refused publish (409)`);
      const combined = sha256(Buffer.concat([v3.meta, v3.root]));
      const add = await fetch(`${edge.url}/${v3.path}/rootfs.squashfs?combined`, {
        method: "POST", headers: { ...auth, "x-ssgen-combined": `incus.tar.xz=${combined}` } });
      assert.equal(add.status, 200);
      assert.equal((await putFile(edge.url, "images/debian/.requirements", Buffer.from('{"secureboot": true}'))).status, 422);
      // A publish whose publisher requires a file the edge lacks: refused too.
      p = await publish(edge.url, "", JSON.stringify({ require: { [`${v3.path}/missing.squashfs`]: "0".repeat(64) } }));
      assert.equal(p.status, 409);
      assert.match(p.json.error, /missing\.squashfs: not on the edge/);
      assert.equal(await text(edge.url, "streams/v1/images.json"), served);

      // Once a publish goes through, the files withdrawn long enough go.
      p = await publish(edge.url);
      assert.equal(p.status, 200, JSON.stringify(p.json));
      assert.deepEqual(p.json.purged.sort(), gone.sort());
      for (const f of gone) {
        const r = await get(edge.url, f);
        assert.equal(r.status, 404);
      }
      assert.deepEqual(await versions(edge.url), ["20260801_0312", "20260803_0312"]);
    }));
});

describe("re-upload racing purge", () => {
  test("a re-upload acknowledged while a purge runs is never purged", () =>
    withEdge({ grace: "2" }, async (edge) => {
      const v = files("20260801_0312");
      const N = 120;
      const paths = Array.from({ length: N }, (_, i) => `${PRODUCT}/20261001_${String(Math.floor(i / 60)).padStart(2, "0")}${String(i % 60).padStart(2, "0")}/incus.tar.xz`);
      const inBatches = async (items, fn, width = 8, before = () => {}) => {
        const out = [];
        for (let i = 0; i < items.length; i += width) {
          before(i / width);
          out.push(...(await Promise.all(items.slice(i, i + width).map(fn))));
        }
        return out;
      };
      let interleaved = 0;
      // Each round starts the purging publish a batch of re-uploads later,
      // until one round has the purge and the re-uploads overlap.
      for (let round = 1; round <= 5 && interleaved === 0; round++) {
        for (const s of await inBatches(paths, (p) => putFile(edge.url, p, v.meta).then((r) => r.status))) {
          assert.ok([200, 201].includes(s));
        }
        for (const s of await inBatches(paths, (p) => del(edge.url, p).then((r) => r.status))) assert.equal(s, 202);
        const stamped = await publish(edge.url);
        assert.equal(stamped.status, 200);
        await sleep(2500);
        let purge;
        // The purge goes through the files in key order, the re-uploads in
        // reverse: they meet.
        const answers = await inBatches([...paths].reverse(), async (p) => {
          const r = await putFile(edge.url, p, v.meta);
          return { p, status: r.status, json: await r.json() };
        }, 8, (batch) => {
          if (batch === round - 1) purge = publish(edge.url);
        });
        const p = await purge;
        assert.equal(p.status, 200);
        const purged = new Set(p.json.purged);
        if (purged.size > 0 && purged.size < N) interleaved++;
        console.log(`round ${round}: purged ${purged.size} of ${N}, ${answers.filter((a) => a.status === 503).length} re-uploads lost to the purge`);
        const files = await edgeFiles(edge.url);
        for (const a of answers) {
          if (a.status === 503) {
            // Lost to the purge before it was acknowledged: sent again, it is back.
            assert.equal((await putFile(edge.url, a.p, v.meta)).status, 201);
            continue;
          }
          assert.ok([200, 201].includes(a.status), `${a.p}: ${a.status} ${JSON.stringify(a.json)}`);
          const held = files.get(a.p);
          assert.ok(held && !held.removed && !held.purged, `${a.p}: acknowledged (${a.status}), then ${JSON.stringify(held)}`);
        }
        const lost = [];
        for (const path of paths) {
          const r = await get(edge.url, path);
          if (r.status !== 200 || !r.body.equals(v.meta)) lost.push(path);
        }
        assert.deepEqual(lost, [], `round ${round}: acknowledged re-uploads that are not served`);
        for (const a of answers) {
          assert.notEqual(a.status, 200, `${a.p}: a removed file is taken back by storing it, not "already present"`);
        }
      }
      assert.ok(interleaved > 0, "in some round the purge and the re-uploads overlapped");
    }));
});

describe("lying combined digests", () => {
  test("a false X-Ssgen-Combined is refused, the catalog carries the computed one, and a wrong stored one is repaired", async () => {
    const persist = tempDir("state");
    const root = tempDir("tree");
    makeVersion(root, { version: "20260801_0312" });
    const v = {
      path: `${PRODUCT}/20260801_0312`,
      meta: readFileSync(join(root, PRODUCT, "20260801_0312", "incus.tar.xz")),
      root: readFileSync(join(root, PRODUCT, "20260801_0312", "rootfs.squashfs")),
    };
    const truth = sha256(Buffer.concat([v.meta, v.root]));
    let edge = await startEdge({ persist });
    try {
      assert.equal((await putFile(edge.url, `${v.path}/incus.tar.xz`, v.meta)).status, 201);
      let r = await putFile(edge.url, `${v.path}/rootfs.squashfs`, v.root, { combined: `incus.tar.xz=${"f".repeat(64)}` });
      assert.equal(r.status, 400);
      const error = (await r.json()).error;
      assert.match(error, /X-Ssgen-Combined incus\.tar\.xz=f{64} is not sha256\(incus\.tar\.xz ‖ rootfs\.squashfs\)/);
      assert.match(error, new RegExp(`which is ${truth}`));
      let p = await publish(edge.url, `?timestamp=${T}`);
      assert.equal(p.status, 200);
      const built = await buildImagesJson(root, T);
      const served = Buffer.from(await (await fetch(`${edge.url}/streams/v1/images.json`)).arrayBuffer());
      assert.ok(served.equals(built.images), "the catalog carries the fingerprint computed from the files");
      assert.doesNotMatch(served.toString(), /f{64}/);
      // The right claim is accepted; a false one stays refused, on every path.
      r = await putFile(edge.url, `${v.path}/rootfs.squashfs`, v.root, { combined: `incus.tar.xz=${truth}` });
      assert.equal(r.status, 200);
      assert.equal((await r.json()).combined["incus.tar.xz"], truth);
      const claim = (c) => fetch(`${edge.url}/${v.path}/rootfs.squashfs?combined`, {
        method: "POST", headers: { ...auth, "x-ssgen-combined": c } });
      assert.equal((await claim(`incus.tar.xz=${"e".repeat(64)}`)).status, 400);
      assert.equal((await claim(`incus.tar.xz=${truth}`)).status, 200);
      assert.equal((await claim(`lxd.tar.xz=${truth}`)).status, 409, "a metadata file the edge lacks");
      // A multipart root with a false claim.
      const v2dir = makeVersion(root, { version: "20260802_0312" });
      const v2 = {
        path: `${PRODUCT}/20260802_0312`,
        meta: readFileSync(join(v2dir, "incus.tar.xz")),
        root: readFileSync(join(v2dir, "rootfs.squashfs")),
      };
      assert.equal((await putFile(edge.url, `${v2.path}/incus.tar.xz`, v2.meta)).status, 201);
      const up = multipart(edge.url, `${v2.path}/rootfs.squashfs`, v2.root, { combined: `incus.tar.xz=${"d".repeat(64)}` });
      assert.equal((await up.start()).status, 200);
      await up.parts();
      r = await up.complete();
      assert.equal(r.status, 400);
      assert.match(r.json.error, /is not sha256/);
      p = await publish(edge.url);
      assert.equal(p.status, 200);
      const doc = await text(edge.url, "streams/v1/images.json");
      assert.doesNotMatch(doc, /d{64}/);
      assert.match(doc, new RegExp(sha256(Buffer.concat([v2.meta, v2.root]))));
    } finally {
      await edge.stop();
    }

    // A fingerprint stored as given by an earlier Worker, in the root's
    // custom metadata: never trusted, and the next push repairs the catalog.
    const v3dir = makeVersion(root, { version: "20260803_0312" });
    const v3 = { meta: readFileSync(join(v3dir, "incus.tar.xz")), root: readFileSync(join(v3dir, "rootfs.squashfs")) };
    await withStores(persist, async ({ r2 }) => {
      const k = `${PRODUCT}/20260803_0312`;
      await r2.put(`${k}/incus.tar.xz`, v3.meta, { customMetadata: { sha256: sha256(v3.meta) } });
      await r2.put(`${k}/rootfs.squashfs`, v3.root, {
        customMetadata: { sha256: sha256(v3.root), "combined.incus.tar.xz": "c".repeat(64) } });
    });
    edge = await startEdge({ persist });
    try {
      // A claim nobody checked is no fingerprint: with no computed one, the
      // root (stored after its metadata file) is taken for an upload still
      // pairing, and its version waits.
      const p = await publish(edge.url);
      assert.equal(p.status, 200, JSON.stringify(p.json));
      assert.ok(p.json.diagnostics.some((d) => d.path === `${PRODUCT}/20260803_0312/rootfs.squashfs`),
        JSON.stringify(p.json.diagnostics));
      const waiting = await text(edge.url, "streams/v1/images.json");
      assert.doesNotMatch(waiting, /c{64}/);
      assert.doesNotMatch(waiting, /20260803_0312/);
      const r = await push(root, edge.url, ["--timestamp", String(T)]);
      assert.match(r.stderr, /0 to upload/);
      const built = await buildImagesJson(root, T);
      const served = Buffer.from(await (await fetch(`${edge.url}/streams/v1/images.json`)).arrayBuffer());
      assert.ok(served.equals(built.images), "push repaired the fingerprint");
    } finally {
      await edge.stop();
    }
  });
});

describe("concurrent publishes during multipart checks", () => {
  /**
   * A published version whose root of `size` bytes is also being sent as a
   * multipart upload, started before a PUT of the same bytes landed and
   * was published: completing it makes the edge read the whole root.
   */
  async function rootSentTwice(base, size, seed) {
    const v = files("20260801_0312");
    const root = bigRoot(size, seed);
    const key = `${v.path}/rootfs.squashfs`;
    assert.equal((await putFile(base, `${v.path}/incus.tar.xz`, v.meta)).status, 201);
    const up = multipart(base, key, root, { combined: claim(v.meta, root) });
    assert.equal((await up.start()).status, 200);
    await up.parts();
    assert.equal((await putFile(base, key, root, { combined: claim(v.meta, root) })).status, 201);
    assert.equal((await publish(base)).json.images, 1);
    return { up, key, root };
  }

  test("a root sent again as multipart stays in every publish while the edge checks it", () =>
    withEdge({}, async (edge) => {
      const { up } = await rootSentTwice(edge.url, 80 << 20, 3);
      let finished = false;
      const completion = up.complete().finally(() => (finished = true));
      // Four publishers at a time, for as long as the check runs.
      let during = 0;
      while (!finished) {
        const round = await Promise.all([1, 2, 3, 4].map(() => publish(edge.url)));
        for (const p of round) {
          assert.equal(p.status, 200);
          assert.equal(p.json.images, 1, "the published root is in every catalog");
        }
        if (!finished) during += round.length;
      }
      const r = await completion;
      assert.ok(during > 0, "some publishes ran while the edge checked the upload");
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.json.stored, false);
      assert.deepEqual(await versions(edge.url), ["20260801_0312"]);
    }));

  test("a Worker killed while it checks an upload leaves the published file in the catalog", async () => {
    const persist = tempDir("state");
    let edge = await startEdge({ persist });
    const { up, key, root } = await rootSentTwice(edge.url, 40 << 20, 4);
    const completion = up.complete().catch(() => null);
    await edge.stop("SIGKILL");
    await completion;
    edge = await startEdge({ persist });
    try {
      const p = await publish(edge.url);
      assert.equal(p.status, 200);
      assert.equal(p.json.images, 1);
      assert.ok((await get(edge.url, key)).body.equals(root));
    } finally {
      await edge.stop();
    }
  });
});

/** Runs `ssgen push` with a bound: a push still running after `ms` fails the test. */
function pushWithin(root, url, extra, ms = 60000) {
  return new Promise((resolve, reject) => {
    const child = spawn(SSGEN, ["push", root, "--to", url, "--token", TOKEN, ...extra], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`ssgen push did not finish in ${ms} ms: ${stderr}`));
    }, ms);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

const htmlPage = (title) =>
  `<!DOCTYPE html><html><head><title>${title}</title></head><body>${"<p>proxy filler</p>".repeat(400)}</body></html>`;

describe("push through a lying proxy", () => {
  test("push refuses to publish what did not arrive, whoever answered for the edge", () =>
    withEdge({}, async (edge) => {
      const root = tempDir("tree");
      makeVersion(root, { version: "20260801_0312" });
      await push(root, edge.url, ["--timestamp", String(T)]);
      const catalog = await text(edge.url, "streams/v1/images.json");
      makeVersion(root, { version: "20260802_0312" });
      const newRoot = `${PRODUCT}/20260802_0312/rootfs.squashfs`;
      const rootBytes = readFileSync(join(root, newRoot));
      const unchanged = async () =>
        assert.equal(await text(edge.url, "streams/v1/images.json"), catalog, "nothing was published");
      const through = async (handler, extra = []) => {
        const proxy = await lyingProxy(edge.url, handler);
        try {
          return { ...(await pushWithin(root, proxy.url, extra)), seen: proxy.seen };
        } finally {
          await proxy.close();
        }
      };

      // An HTML 200 for the root's PUT, which never reached the edge.
      let r = await through((req) => (req.method === "PUT" && req.url.includes("rootfs.squashfs")
        ? { status: 200, headers: { "content-type": "text/html" }, body: htmlPage("Welcome") } : null));
      assert.notEqual(r.code, 0, r.stderr);
      assert.match(r.stderr, /uploading images\/debian\/12\/amd64\/default\/20260802_0312\/rootfs\.squashfs/);
      assert.match(r.stderr, /an HTML page titled "Welcome"/);
      assert.doesNotMatch(r.stderr, /proxy filler/, "the page is summarised, not echoed");
      assert.doesNotMatch(r.stderr, /published generation/);
      assert.ok(!r.seen.some((s) => s.url.startsWith("/publish")), "no publish was asked for");
      await unchanged();

      // A JSON answer that looks like the edge's, for a PUT that never
      // reached it: the second listing finds the file missing.
      r = await through((req) => (req.method === "PUT" && req.url.includes("rootfs.squashfs")
        ? { status: 201, headers: { "content-type": "application/json" },
            body: JSON.stringify({ path: newRoot, sha256: sha256(rootBytes), size: rootBytes.length, stored: true,
              combined: { "incus.tar.xz": sha256(Buffer.concat([readFileSync(join(root, PRODUCT, "20260802_0312", "incus.tar.xz")), rootBytes])) } }) }
        : null));
      assert.notEqual(r.code, 0, r.stderr);
      assert.match(r.stderr, /1 file\(s\) are not on the edge as sent, so nothing was published/);
      assert.match(r.stderr, /20260802_0312\/rootfs\.squashfs: not on the edge/);
      await unchanged();

      // A file removed by someone else between push's check and its
      // publish: the edge refuses the publish, since it would skip a version
      // of the publisher.
      let sneaked = false;
      r = await through(async (req) => {
        if (req.url.startsWith("/publish") && !sneaked) {
          sneaked = true;
          assert.equal((await del(edge.url, newRoot)).status, 202);
        }
        return null;
      });
      assert.notEqual(r.code, 0, r.stderr);
      assert.match(r.stderr, /publishing: 409: .*20260802_0312\/rootfs\.squashfs: not on the edge, or removed/);
      await unchanged();

      // The publish's answer, faked.
      r = await through((req) => (req.url.startsWith("/publish")
        ? { status: 200, headers: { "content-type": "application/json" }, body: '{"ok": true}' } : null));
      assert.notEqual(r.code, 0, r.stderr);
      assert.match(r.stderr, /publishing: the answer names no generation/);
      await unchanged();

      // A CDN's error page for the publish: summarised in one line.
      r = await through((req) => (req.url.startsWith("/publish")
        ? { status: 502, headers: { "content-type": "text/html" }, body: htmlPage("502 Bad Gateway") } : null));
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /publishing: the edge answered 502: an HTML page titled "502 Bad Gateway"/);
      assert.doesNotMatch(r.stderr, /proxy filler/);
      await unchanged();

      // Stalls: the listing, then the publish. Push gives up after
      // --timeout, saying so.
      r = await through((req) => (req.url.startsWith("/api/v1/files") ? "stall" : null), ["--timeout", "2"]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /listing the edge's files: no answer from .* within 2 s \(--timeout\)/);
      r = await through((req) => (req.url.startsWith("/publish") ? "stall" : null), ["--timeout", "2"]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /publishing: no answer from .* within 2 s \(--timeout\)/);
      await unchanged();

      // An honest proxy: it goes through.
      r = await through(() => null, ["--timestamp", String(T)]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /published generation 2/);
      const built = await buildImagesJson(root, T);
      assert.ok(Buffer.from(await (await fetch(`${edge.url}/streams/v1/images.json`)).arrayBuffer()).equals(built.images));
    }));

  test("push reads a listing larger than 10 MB, and says when a listing cannot be read", async () => {
    // A stand-in for the edge, because the real one answers in pages of a
    // few hundred KB (that paging is tested below): this checks push itself
    // against any server's long or broken answer.
    const root = tempDir("tree");
    makeVersion(root, { version: "20260801_0312" });
    const dir = `${PRODUCT}/20260801_0312`;
    const meta = readFileSync(join(root, dir, "incus.tar.xz"));
    const squash = readFileSync(join(root, dir, "rootfs.squashfs"));
    const held = [
      { path: `${dir}/incus.tar.xz`, size: meta.length, sha256: sha256(meta), purged: false },
      { path: `${dir}/rootfs.squashfs`, size: squash.length, sha256: sha256(squash), purged: false },
    ];
    for (let i = 0; i < 60000; i++) {
      held.push({ path: `images/other/${String(i).padStart(6, "0")}/${"x".repeat(120)}`, size: 1, sha256: "0".repeat(64), purged: false });
    }
    const combined = [{ path: `${dir}/rootfs.squashfs`, meta: "incus.tar.xz", sha256: sha256(Buffer.concat([meta, squash])),
      meta_sha256: sha256(meta), root_sha256: sha256(squash) }];
    const page = JSON.stringify({ files: held, removed: [], combined, next: null });
    assert.ok(page.length > 10 << 20, `the listing is ${page.length} bytes`);
    let broken = false;
    const server = http.createServer((req, res) => {
      if (req.url.startsWith("/api/v1/files")) {
        if (broken) {
          // Headers promise more than the body brings.
          res.writeHead(200, { "content-type": "application/json", "content-length": String(page.length) });
          res.end(page.slice(0, 1000));
          req.socket.destroy();
          return;
        }
        res.writeHead(200, { "content-type": "application/json" });
        res.end(page);
      } else if (req.url.startsWith("/publish")) {
        req.resume();
        req.on("end", () => {
          res.writeHead(200, { "content-type": "application/json" });
          res.end(JSON.stringify({ generation: 7, changed: false, products: 1, images: 1, diagnostics: [] }));
        });
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${server.address().port}`;
    try {
      let r = await pushWithin(root, url, []);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /0 to upload/);
      assert.match(r.stderr, /published generation 7/);
      broken = true;
      r = await pushWithin(root, url, []);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /listing the edge's files: cannot read the answer/);
      assert.doesNotMatch(r.stderr, /EOF while parsing/);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  test("the edge's listing comes in pages, and push reads them all", async () => {
    const persist = tempDir("state");
    const root = tempDir("tree");
    makeVersion(root, { version: "20260801_0312" });
    let edge = await startEdge({ persist });
    await push(root, edge.url, ["--timestamp", String(T)]);
    await edge.stop();
    const extra = 1500;
    await withStores(persist, async ({ r2 }) => {
      for (let i = 0; i < extra; i += 50) {
        await Promise.all(Array.from({ length: 50 }, (_, k) =>
          r2.put(`images/other/1/amd64/default/${String(i + k).padStart(5, "0")}/x`, "", { customMetadata: { sha256: sha256("") } })));
      }
    });
    edge = await startEdge({ persist });
    try {
      let pages = 0;
      let listed = 0;
      let cursor = null;
      do {
        const q = cursor ? `?cursor=${encodeURIComponent(cursor)}` : "";
        const page = await (await fetch(`${edge.url}/api/v1/files${q}`, { headers: auth })).json();
        pages++;
        listed += page.files.length;
        assert.ok(page.files.length <= 1000);
        cursor = page.next;
      } while (cursor && pages < 100);
      assert.equal(listed, extra + 2);
      assert.ok(pages >= 4, `${pages} pages`);
      assert.equal((await fetch(`${edge.url}/api/v1/files?cursor=nonsense`, { headers: auth })).status, 400);
      const r = await push(root, edge.url, ["--timestamp", String(T)]);
      assert.match(r.stderr, /0 to upload/);
      assert.match(r.stderr, /unchanged/);
    } finally {
      await edge.stop();
    }
  });
});

describe("push after prune and remove", () => {
  test("withdrawn versions reach the edge as removals, with and without --delete", () =>
    withEdge({}, async (edge) => {
      const root = tempDir("tree");
      for (const v of ["20260801_0312", "20260802_0312", "20260803_0312"]) makeVersion(root, { version: v });
      await push(root, edge.url, ["--timestamp", String(T)]);
      assert.deepEqual(await versions(edge.url), ["20260801_0312", "20260802_0312", "20260803_0312"]);
      let r = await ssgen(["prune", "--keep", "1", root]);
      assert.equal(r.code, 0, r.stderr);
      r = await push(root, edge.url, ["--timestamp", String(T)]);
      assert.match(r.stderr, /4 file\(s\) removed from the edge/);
      assert.deepEqual(await versions(edge.url), ["20260803_0312"]);
      let held = await edgeFiles(edge.url);
      assert.ok(![...held.keys()].some((p) => p.includes(".withdrawn")), "no marker was uploaded");
      for (const v of ["20260801_0312", "20260802_0312"]) {
        for (const f of ["incus.tar.xz", "rootfs.squashfs"]) {
          assert.equal(held.get(`${PRODUCT}/${v}/${f}`).removed, true);
          assert.equal((await get(edge.url, `${PRODUCT}/${v}/${f}`)).status, 200, "downloadable for the grace period");
        }
      }
      // A second push has nothing to do.
      r = await push(root, edge.url, ["--timestamp", String(T)]);
      assert.match(r.stderr, /0 to upload/);
      assert.doesNotMatch(r.stderr, /removed from the edge/);

      // ssgen remove, by fingerprint, pushed with --delete.
      makeVersion(root, { version: "20260804_0312" });
      await push(root, edge.url, ["--timestamp", String(T)]);
      assert.equal((await ssgen(["build", root, "--timestamp", String(T)])).code, 0);
      const dir = join(root, PRODUCT, "20260804_0312");
      const fingerprint = sha256(Buffer.concat([readFileSync(join(dir, "incus.tar.xz")), readFileSync(join(dir, "rootfs.squashfs"))]));
      r = await ssgen(["remove", fingerprint.slice(0, 12), root]);
      assert.equal(r.code, 0, r.stderr);
      r = await push(root, edge.url, ["--delete", "--timestamp", String(T)]);
      assert.match(r.stderr, /2 file\(s\) removed from the edge/);
      assert.deepEqual(await versions(edge.url), ["20260803_0312"]);

      // A marker that withdraws one file of a version: that file goes, the
      // other stays (and the version, now incomplete, leaves the catalog).
      writeFileSync(join(root, PRODUCT, "20260803_0312", ".withdrawn"), JSON.stringify({ since: T, files: ["rootfs.squashfs"] }));
      makeVersion(root, { version: "20260805_0312" });
      r = await push(root, edge.url, ["--timestamp", String(T)]);
      assert.match(r.stderr, /1 file\(s\) removed from the edge/);
      held = await edgeFiles(edge.url);
      assert.equal(held.get(`${PRODUCT}/20260803_0312/rootfs.squashfs`).removed, true);
      assert.ok(!held.get(`${PRODUCT}/20260803_0312/incus.tar.xz`).removed);
      assert.deepEqual(await versions(edge.url), ["20260805_0312"]);

      // Once prune deleted the withdrawn files, push has nothing to remove.
      r = await ssgen(["prune", "--grace", "0", root]);
      assert.equal(r.code, 0, r.stderr);
      r = await push(root, edge.url, ["--delete", "--timestamp", String(T)]);
      assert.equal(r.code, 0);
      assert.deepEqual(await versions(edge.url), ["20260805_0312"]);
    }));

  test("a withdrawal a proxy swallowed is caught before publishing", () =>
    withEdge({}, async (edge) => {
      const root = tempDir("tree");
      for (const v of ["20260801_0312", "20260802_0312"]) makeVersion(root, { version: v });
      await push(root, edge.url, ["--timestamp", String(T)]);
      assert.equal((await ssgen(["prune", "--keep", "1", root])).code, 0);
      const proxy = await lyingProxy(edge.url, (req) => (req.method === "DELETE"
        ? { status: 202, headers: { "content-type": "application/json" },
            body: JSON.stringify({ path: decodeURIComponent(req.url.slice(1)) }) } : null));
      try {
        const r = await pushWithin(root, proxy.url, []);
        assert.notEqual(r.code, 0, r.stderr);
        assert.match(r.stderr, /20260801_0312\/rootfs\.squashfs: still published on the edge, not removed/);
      } finally {
        await proxy.close();
      }
      assert.deepEqual(await versions(edge.url), ["20260801_0312", "20260802_0312"]);
    }));
});

describe("client mistakes", () => {
  test("are answered 4xx, never 500", () =>
    withEdge({}, async (edge) => {
      const v = files("20260801_0312");
      // A key R2 would refuse.
      for (const n of [990, 1030, 4000]) {
        const path = `/${PRODUCT}/20260801_0312/${"a".repeat(n)}`;
        for (const method of ["PUT", "GET", "DELETE"]) {
          const r = await raw(edge.url, method, path, {
            headers: { ...auth, "x-ssgen-sha256": sha256(v.meta), "content-length": String(v.meta.length) },
            body: method === "PUT" ? v.meta : undefined,
          });
          assert.equal(r.status, 400, `${method} of a ${n}-byte name: ${r.status} ${r.body}`);
          assert.match(r.body.toString(), /longer than 960 bytes/);
        }
      }
      // Upload ids that are not (or no longer) in progress.
      const key = `${v.path}/rootfs.squashfs`;
      for (const id of ["nope", "0".repeat(32), "bcX4_xIdRxeixbNnvh5k3SpU4SO3-WxHr"]) {
        const q = `upload_id=${encodeURIComponent(id)}`;
        assert.equal((await fetch(`${edge.url}/${key}?${q}`, { method: "DELETE", headers: auth })).status, 404, `abort ${id}`);
        assert.equal((await fetch(`${edge.url}/${key}?${q}&part=1`, { method: "PUT", headers: auth, body: "x" })).status, 404);
        assert.equal((await fetch(`${edge.url}/${key}?${q}`, { method: "POST", headers: auth, body: '{"parts": []}' })).status, 404);
      }
      const up = multipart(edge.url, key, v.root);
      assert.equal((await up.start()).status, 200);
      const elsewhere = `${v.path}/disk.qcow2?upload_id=${up.id}`;
      assert.equal((await fetch(`${edge.url}/${elsewhere}`, { method: "DELETE", headers: auth })).status, 404, "another path's id");
      assert.equal((await fetch(`${edge.url}/${key}?upload_id=${up.id}`, { method: "DELETE", headers: auth })).status, 204);
      assert.equal((await fetch(`${edge.url}/${key}?upload_id=${up.id}`, { method: "DELETE", headers: auth })).status, 404, "aborted twice");
    }));

  test("a missing alias map is rebuilt from the published catalog", async () => {
    const persist = tempDir("state");
    const root = tempDir("tree");
    const dir = makeVersion(root, { os: "alpine", release: "3.20", version: "20260801_0000", unified: true });
    const tarball = readFileSync(join(dir, "incus_combined.tar.gz"));
    let edge = await startEdge({ persist });
    await push(root, edge.url);
    await edge.stop();
    const dropAliases = () => withStores(persist, async ({ kv }) => {
      const keys = (await kv.list({ prefix: "aliases/" })).keys;
      assert.ok(keys.length > 0);
      for (const k of keys) await kv.delete(k.name);
    });
    await dropAliases();
    edge = await startEdge({ persist });
    try {
      const r = await fetch(`${edge.url}/aliases/alpine/3.20`, { method: "HEAD", headers: { "incus-server-architectures": "x86_64" } });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("incus-image-hash"), sha256(tarball));
    } finally {
      await edge.stop();
    }
    await withStores(persist, async ({ kv }) => assert.ok((await kv.list({ prefix: "aliases/" })).keys.length > 0, "stored back"));
    // An unchanged publish mends it too.
    await dropAliases();
    edge = await startEdge({ persist });
    try {
      assert.equal((await publish(edge.url)).json.changed, false);
    } finally {
      await edge.stop();
    }
    await withStores(persist, async ({ kv }) => assert.ok((await kv.list({ prefix: "aliases/" })).keys.length > 0, "rewritten"));
  });
});

describe("small things", () => {
  test("headers and parameters read as HTTP means them", () =>
    withEdge({}, async (edge) => {
      const root = tempDir("tree");
      makeVersion(root, { version: "20260801_0312" });
      makeVersion(root, { os: "alpine", release: "3.20", version: "20260801_0000", unified: true });
      makeVersion(root, { os: "alpine", release: "3.20", arch: "arm64", version: "20260801_0000", seed: "arm", unified: true });
      await push(root, edge.url);
      // Auth schemes are case-insensitive.
      for (const scheme of ["BEARER", "bearer", "Bearer"]) {
        const r = await fetch(`${edge.url}/api/v1/files`, { headers: { authorization: `${scheme} ${TOKEN}` } });
        assert.equal(r.status, 200, scheme);
      }
      assert.equal((await fetch(`${edge.url}/api/v1/files`, { headers: { authorization: `Basic ${TOKEN}` } })).status, 401);
      const file = `${PRODUCT}/20260801_0312/rootfs.squashfs`;
      const bytes = readFileSync(join(root, file));
      // An If-Range that is neither an entity tag nor a date: the whole file.
      for (const ir of ["garbage", '"unterminated', "Tuesday"]) {
        const r = await fetch(`${edge.url}/${file}`, { headers: { range: "bytes=0-3", "if-range": ir } });
        assert.equal(r.status, 200, `If-Range: ${ir}`);
        assert.equal(Number(r.headers.get("content-length")), bytes.length);
      }
      // A first byte past any file: 416, whatever its size.
      for (const range of ["bytes=18446744073709551616-", "bytes=99999999999999999999999-1"]) {
        const r = await fetch(`${edge.url}/${file}`, { headers: { range } });
        assert.equal(r.status, range.endsWith("-1") ? 200 : 416, range);
      }
      const r2 = await fetch(`${edge.url}/${file}`, { headers: { range: "bytes=1-18446744073709551616" } });
      assert.equal(r2.status, 206);
      assert.equal(r2.headers.get("content-range"), `bytes 1-${bytes.length - 1}/${bytes.length}`);
      // Timestamps a catalog cannot carry.
      for (const t of ["9223372036854775807", "-1", "253402300800", "1e9"]) {
        const p = await publish(edge.url, `?timestamp=${t}`);
        assert.equal(p.status, 400, t);
        assert.match(p.json.error, /between 0 and 253402300799/);
      }
      // An empty Incus header says nothing, and does not hide LXD's.
      const a = await fetch(`${edge.url}/aliases/alpine/3.20`, {
        method: "HEAD", headers: { "incus-server-architectures": "", "lxd-server-architectures": "aarch64" } });
      assert.equal(a.status, 200);
      assert.match(a.headers.get("lxd-image-url"), /arm64/);
    }));

  test("a purged path never takes other bytes; the same bytes bring it back", () =>
    withEdge({ grace: "0" }, async (edge) => {
      const a = files("20260801_0312", "a");
      const b = files("20260801_0312", "b");
      const key = `${a.path}/incus.tar.xz`;
      assert.equal((await putFile(edge.url, key, a.meta)).status, 201);
      assert.equal((await del(edge.url, key)).status, 202);
      const first = await publish(edge.url);
      assert.equal(first.status, 200);
      const second = await publish(edge.url);
      assert.deepEqual([...first.json.purged, ...second.json.purged], [key]);
      const gone = await fetch(`${edge.url}/${key}`);
      assert.equal(gone.status, 404);
      const other = await putFile(edge.url, key, b.meta);
      assert.equal(other.status, 409, "caches may still hold the old bytes for a day");
      assert.match((await other.json()).error, /until they were purged/);
      assert.match((await gone.json()).error, /purged/);
      assert.equal((await fetch(`${edge.url}/${key}`, { headers: { range: "bytes=0-3" } })).status, 404);
      assert.equal((await del(edge.url, key)).status, 404);
      assert.equal((await putFile(edge.url, key, a.meta)).status, 201);
      assert.ok((await get(edge.url, key)).body.equals(a.meta));
      assert.ok(!(await edgeFiles(edge.url)).get(key).removed);

      // A side file, which no client downloads, takes other bytes: in
      // place, and after a purge.
      const side = "images/debian/.requirements";
      assert.equal((await putFile(edge.url, side, Buffer.from('{"secureboot": "false"}'))).status, 201);
      const changed = Buffer.from('{"secureboot": "true"}');
      assert.equal((await putFile(edge.url, side, changed)).status, 201);
      assert.ok((await get(edge.url, side)).body.equals(changed));
      assert.equal((await putFile(edge.url, side, changed)).status, 200, "the same bytes again");
      assert.equal((await del(edge.url, side)).status, 202);
      assert.equal((await publish(edge.url)).status, 200);
      assert.ok((await publish(edge.url)).json.purged.includes(side));
      const again = Buffer.from('{"secureboot": "false"}');
      assert.equal((await putFile(edge.url, side, again)).status, 201);
      assert.ok((await get(edge.url, side)).body.equals(again));
    }));

  test("files pushed with --no-publish are downloadable, and push says so", () =>
    withEdge({}, async (edge) => {
      const root = tempDir("tree");
      makeVersion(root, { version: "20260801_0312" });
      const r = await push(root, edge.url, ["--no-publish"]);
      assert.match(r.stderr, /not published \(--no-publish\): no catalog lists the new files, but they are downloadable by their paths/);
      assert.equal((await fetch(`${edge.url}/streams/v1/index.json`)).status, 404);
      assert.equal((await get(edge.url, `${PRODUCT}/20260801_0312/rootfs.squashfs`)).status, 200);
    }));
});
