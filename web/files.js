// Collecting what the user gives: a dropped folder (webkitGetAsEntry), a
// folder chosen with <input webkitdirectory>, or loose files. Only names,
// sizes and a few leading bytes are read here; contents are read by the
// hashing workers. Which of the files are the server root's, and where,
// the core says (ssgen.treeFiles).

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
