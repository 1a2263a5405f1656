// Collecting what the user gives: a dropped folder (webkitGetAsEntry), a
// folder chosen with <input webkitdirectory>, or loose files. Only names,
// sizes and a few leading bytes are read here; contents are read by the
// hashing workers.

// Files of a dropped folder, with their paths relative to the drop. Dropped
// plain files are returned with `path` = their name and `loose` = true.
export async function filesFromDrop(dataTransfer) {
  const entries = [];
  const loose = [];
  for (const item of dataTransfer.items) {
    if (item.kind !== "file") continue;
    const entry = item.webkitGetAsEntry?.();
    if (entry?.isDirectory) entries.push(entry);
    else {
      const file = item.getAsFile();
      if (file) loose.push(file);
    }
  }
  const out = [];
  for (const entry of entries) await walk(entry, out);
  return { tree: out, loose };
}

async function walk(entry, out) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    out.push({ path: entry.fullPath.replace(/^\/+/, ""), file });
    return;
  }
  const reader = entry.createReader();
  // readEntries returns at most ~100 entries per call: call until empty.
  for (;;) {
    const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) break;
    for (const child of batch) await walk(child, out);
  }
}

// Files of an <input webkitdirectory>.
export function filesFromFolderInput(input) {
  return [...input.files].map((file) => ({ path: file.webkitRelativePath || file.name, file }));
}

// Maps the paths of a dropped or chosen folder onto the server root: the
// folder may be `images/` itself or the root that holds it (with, perhaps,
// `streams/v1/images.json`). Returns {files: [{path, file}], previous} with
// paths starting `images/`, or throws a readable error.
export function rootTree(items) {
  const split = items.map((it) => ({ ...it, parts: it.path.split("/") }));
  const depth = (it) => it.parts.indexOf("images");
  // The shallowest `images` component: 0 when the folder is images/, 1 when
  // it is the root above it.
  const found = split.map(depth).filter((d) => d >= 0 && d <= 1);
  if (found.length === 0) {
    throw new Error(
      "no images/ folder found: choose the folder laid out as images/<os>/<release>/<arch>/<variant>/<version>/ (or the folder that holds it)",
    );
  }
  const cut = Math.min(...found);
  const files = [];
  let previous = null;
  for (const it of split) {
    const rel = it.parts.slice(cut).join("/");
    if (it.parts.length <= cut) continue;
    if (cut === 1 || it.parts[0] === "images") {
      if (rel.startsWith("images/")) files.push({ path: rel, file: it.file });
      else if (rel === "streams/v1/images.json") previous = it.file;
    }
  }
  return { files, previous };
}

// The first `n` bytes of a file.
export async function head(file, n) {
  return new Uint8Array(await file.slice(0, n).arrayBuffer());
}

// Runs `fn` over `items` with at most `limit` at once (reading thousands of
// heads at once would open thousands of file handles).
export async function mapLimit(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  const run = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
  return out;
}
