// The hashing worker: reads File objects piece by piece (a BYOB reader of
// File.stream() into one reused buffer, else 4 MiB File.slices) and pushes
// them into the wasm hasher, so no file is ever whole in memory, memory
// stays flat, and the page's main thread never hashes. The browser reads
// ahead while a piece is hashed.
//
// Messages in:
//   {type: "init", module}                       the compiled WebAssembly.Module
//   {type: "hash", id, job, file, prefixes: [{job, file}]}
//        prefixes: metadata files this worker must hash first (their
//        finished SHA-256 state cannot be sent from another worker)
//   {type: "identify", id, file}                  what a file of an export is
//   {type: "cancel"}                               stop the current job
// Messages out:
//   {type: "ready"} | {type: "progress", id, path, done}
//   {type: "result", id, result, hashMs} | {type: "identified", id, identified}
//        hashMs: time spent inside the hasher (the rest was reading)
//   {type: "error", id, message} | {type: "cancelled", id}

import init, * as ssgen from "./pkg/ssgen_wasm.js";

// The largest piece read at once: big enough that the per-call cost
// vanishes, small enough that memory stays flat.
const CHUNK = 4 * 1024 * 1024;

// Files of an export are identified from smaller pieces: reading stops at
// the first bytes, or once a tarball's metadata.yaml is known.
const IDENTIFY_CHUNK = 256 * 1024;

let store = null;
// Bumped by "cancel": a job started under an older generation stops.
let generation = 0;
const queue = [];
let busy = false;

class Cancelled extends Error {}

function readSlice(file, start, end) {
  return file.slice(start, end).arrayBuffer();
}

// Time spent inside the hasher (for benchmarks: hashing vs reading).
const inHasher = { ms: 0 };

// The readers of the files being hashed, held until each file is done.
// While a read is pending, nothing else refers to a File's stream: the
// read's promise, and the job awaiting it, hang off the stream itself.
// Chromium then collects the stream at the worker's next garbage collection
// and the read never settles, so the job would wait forever (a collection
// forced during a drop of a few dozen files shows it every time).
const reading = new Set();

// Hashes one file; `report(done)` is called after each piece.
//
// A BYOB reader of File.stream() reads into one buffer, reused: the reader
// hands back the same memory each time, so no chunk is left for the garbage
// collector (with `slice().arrayBuffer()`, each chunk is a new buffer and
// the worker's memory grows by hundreds of MiB before a collection). Each
// piece is hashed as it arrives, while the browser reads the next bytes of
// the file into the stream's pipe on its own thread.
async function hashFile(job, file, report, gen) {
  const hasher = new ssgen.Hasher(job, store);
  let reader = null;
  try {
    try {
      reader = file.stream().getReader({ mode: "byob" });
    } catch {
      // No byte stream here: fall back to slices (same bytes, more garbage).
    }
    let seen = 0;
    if (reader) {
      reading.add(reader);
      let buffer = new ArrayBuffer(CHUNK);
      for (;;) {
        const { value, done } = await reader.read(new Uint8Array(buffer));
        if (gen !== generation) {
          reader.cancel();
          throw new Cancelled();
        }
        if (value) {
          if (value.byteLength > 0) {
            const began = performance.now();
            hasher.update(value);
            inHasher.ms += performance.now() - began;
            seen += value.byteLength;
            report(seen);
          }
          buffer = value.buffer;
        }
        if (done) break;
      }
    } else {
      const size = file.size;
      let next = size > 0 ? readSlice(file, 0, Math.min(CHUNK, size)) : null;
      for (let offset = 0; offset < size; offset += CHUNK) {
        const buffer = await next;
        if (gen !== generation) throw new Cancelled();
        const following = offset + CHUNK;
        next = following < size ? readSlice(file, following, Math.min(following + CHUNK, size)) : null;
        const began = performance.now();
        hasher.update(new Uint8Array(buffer));
        inHasher.ms += performance.now() - began;
        report(offset + buffer.byteLength);
      }
    }
  } catch (e) {
    hasher.free();
    throw e;
  } finally {
    reading.delete(reader);
  }
  // finish() consumes the hasher, and checks the size against the listing.
  return hasher.finish(store);
}

async function handle(msg) {
  const { id } = msg;
  const gen = generation;
  try {
    if (msg.type === "hash") {
      for (const p of msg.prefixes) {
        if (!store.has(p.job.path)) await hashFile(p.job, p.file, () => {}, gen);
      }
      let last = 0;
      inHasher.ms = 0;
      const result = await hashFile(msg.job, msg.file, (done) => {
        // Progress at most every ~16 MiB or at the end, to keep messages few.
        if (done - last >= 4 * CHUNK || done === msg.file.size) {
          last = done;
          postMessage({ type: "progress", id, path: msg.job.path, done });
        }
      }, gen);
      postMessage({ type: "result", id, result, hashMs: inHasher.ms });
    } else if (msg.type === "identify") {
      // Streamed: the core reads the first bytes, and a tarball only until
      // its metadata.yaml is known, so a multi-GB unified tarball is not
      // read to its end.
      const { file } = msg;
      const reader = new FileReaderSync();
      let offset = 0;
      const identified = ssgen.identifyExport(() => {
        const end = Math.min(offset + IDENTIFY_CHUNK, file.size);
        const piece = offset < end ? reader.readAsArrayBuffer(file.slice(offset, end)) : new ArrayBuffer(0);
        offset = end;
        return new Uint8Array(piece);
      });
      postMessage({ type: "identified", id, identified });
    } else {
      throw new Error(`unknown message ${msg.type}`);
    }
  } catch (e) {
    if (e instanceof Cancelled) {
      postMessage({ type: "cancelled", id });
    } else {
      postMessage({ type: "error", id, message: e instanceof Error ? e.message : String(e) });
    }
  }
}

async function pump() {
  if (busy) return;
  busy = true;
  while (queue.length > 0) {
    const msg = queue.shift();
    await handle(msg);
  }
  busy = false;
}

onmessage = async (event) => {
  const msg = event.data;
  if (msg.type === "init") {
    await init({ module_or_path: msg.module });
    store = new ssgen.PrefixStore();
    postMessage({ type: "ready" });
  } else if (msg.type === "cancel") {
    // Jobs still queued are dropped; the running one stops after its chunk.
    generation += 1;
    for (const queued of queue.splice(0)) postMessage({ type: "cancelled", id: queued.id });
  } else {
    queue.push(msg);
    pump();
  }
};
