// Trees of many small files: every drop finishes, with ssgen build's bytes.
//
// A worker awaiting the read of a file must not lose it to a garbage
// collection (Chromium collects a File's stream that only its own pending
// read refers to, and that read then never settles). Collections come when
// the browser decides, so the repeated drops below force them in the
// workers while they hash, which makes such a loss certain rather than a
// matter of timing; the 1,000-file drop runs without help.

import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import {
  ARTIFACTS,
  dropPaths,
  forceCollections,
  metadataTarball,
  openPage,
  run,
  ssgenBuild,
  tempDir,
  waitDone,
  useBrowser,
} from "./lib.mjs";

const TIMESTAMP = 1785556800;
const suite = useBrowser({ exposeGc: true });

// `versions` versions of one product, each a real xz metadata tarball and
// a real root.tar.xz of its own, with a .requirements above them: two
// files per version plus one.
function makeTree(versions) {
  const root = tempDir("many");
  const src = tempDir("many-src");
  mkdirSync(join(src, "etc"));
  const day = 86_400;
  for (let i = 0; i < versions; i++) {
    const created = 1767225600 + i * day + 3 * 3600 + 12 * 60; // 2026-01-01 03:12 UTC onwards
    const name = new Date(created * 1000).toISOString().replace(/^(\d+)-(\d+)-(\d+)T(\d+):(\d+).*$/, "$1$2$3_$4$5");
    const v = join(root, "images/debian/12/amd64/default", name);
    metadataTarball(join(v, "incus.tar.xz"), { created, os: "Debian", release: "12", serial: name });
    writeFileSync(join(src, "etc/os-release"), `NAME=Debian\nBUILD_ID=${name}\n`);
    run("tar", ["-cJf", join(v, "root.tar.xz"), "-C", src, "etc"]);
  }
  writeFileSync(join(root, "images/debian/.requirements"), '{"secureboot": "false"}\n');
  return { root, files: 2 * versions + 1 };
}

async function documents(page) {
  return {
    imagesJson: await page.textContent('[data-testid="images-json"]'),
    indexJson: await page.textContent('[data-testid="index-json"]'),
  };
}

// Which files are not hashed yet, for the message of a run that hangs.
async function unfinished(page) {
  const rows = await page.locator("#files li:not(.done)").allTextContents();
  return `${rows.length} file(s) not finished, e.g. ${rows.slice(0, 3).join(" | ")}; overall: ${await page.textContent("#overall-text")}`;
}

test("a tree of 151 files dropped 5 times in a row finishes every time, with ssgen build's bytes", async () => {
  const { root, files } = makeTree(75);
  assert.ok(files >= 150);
  const expected = ssgenBuild(root, TIMESTAMP);
  assert.equal(Object.keys(JSON.parse(expected.imagesJson).products["debian:12:amd64:default"].versions).length, 75);

  const { page, problems } = await openPage(suite.browser, `${suite.server.url}?timestamp=${TIMESTAMP}`);
  for (let n = 1; n <= 5; n++) {
    const stop = forceCollections(page);
    try {
      await dropPaths(page, [root]);
      await waitDone(page, 120_000, n).catch(async (e) => {
        throw new Error(`drop ${n} of 5 did not finish: ${e.message}; ${await unfinished(page)}`);
      });
    } finally {
      await stop();
    }
    assert.equal(await page.locator("#files li.done").count(), files - 1, `drop ${n}: every image file hashed`);
    assert.deepEqual(await documents(page), expected, `drop ${n}: ssgen build's bytes`);
  }
  assert.deepEqual(problems, []);
  await page.close();
});

test("a tree of 1,001 small files dropped once finishes, with ssgen build's bytes", async (t) => {
  const { root, files } = makeTree(500);
  assert.ok(files >= 1000);
  const expected = ssgenBuild(root, TIMESTAMP);

  const { page, problems } = await openPage(suite.browser, `${suite.server.url}?timestamp=${TIMESTAMP}`);
  const began = Date.now();
  await dropPaths(page, [root]);
  await waitDone(page, 600_000).catch(async (e) => {
    throw new Error(`the drop did not finish: ${e.message}; ${await unfinished(page)}`);
  });
  const wallMs = Date.now() - began;
  const hashMs = Number(await page.getAttribute("body", "data-hash-ms"));
  assert.equal(await page.locator("#files li.done").count(), files - 1);
  assert.deepEqual(await documents(page), expected);
  t.diagnostic(`${files} files: drop to done in ${(wallMs / 1000).toFixed(1)} s, of which hashing ${(hashMs / 1000).toFixed(1)} s`);
  writeFileSync(join(ARTIFACTS, "many.json"), `${JSON.stringify({ files, wallMs, hashMs }, null, 2)}\n`);
  assert.deepEqual(problems, []);
  await page.close();
});
