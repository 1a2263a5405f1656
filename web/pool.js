// The hashing workers, seen from the main thread: runs a hash plan (every
// metadata file first, then the bodies, largest first, on whichever worker
// is free) and reports progress. The main thread only schedules and records
// results; all reading and hashing happens in the workers.

const WORKER_URL = new URL("./worker.js", import.meta.url);

export class Cancelled extends Error {
  constructor() {
    super("cancelled");
  }
}

class Slot {
  constructor(module, index) {
    this.index = index;
    this.worker = new Worker(WORKER_URL, { type: "module", name: `ssgen-hash-${index}` });
    // Metadata files whose finished state this worker holds.
    this.prefixes = new Set();
    this.pending = new Map();
    this.onProgress = null;
    this.ready = new Promise((resolve, reject) => {
      this.worker.onerror = (e) => reject(new Error(`hashing worker failed to start: ${e.message ?? "load error"}`));
      this.worker.onmessage = (event) => {
        if (event.data.type === "ready") {
          this.worker.onmessage = (e) => this.receive(e.data);
          resolve();
        }
      };
    });
    this.worker.postMessage({ type: "init", module });
  }

  receive(msg) {
    if (msg.type === "progress") {
      this.onProgress?.(msg.path, msg.done);
      return;
    }
    const waiting = this.pending.get(msg.id);
    if (!waiting) return;
    this.pending.delete(msg.id);
    if (msg.type === "error") waiting.reject(new Error(msg.message));
    else if (msg.type === "cancelled") waiting.reject(new Cancelled());
    else waiting.resolve(msg);
  }

  request(message) {
    const id = `${this.index}:${Slot.next++}`;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...message, id });
    });
  }
}
Slot.next = 0;

export class Pool {
  // `module`: the compiled WebAssembly.Module, shared by every worker (it
  // is fetched once, so the page keeps working offline once loaded).
  constructor(module, size) {
    this.slots = Array.from({ length: size }, (_, i) => new Slot(module, i));
    this.running = false;
  }

  get size() {
    return this.slots.length;
  }

  ready() {
    return Promise.all(this.slots.map((s) => s.ready));
  }

  // What a file of an export is, and what its metadata.yaml says (read in
  // the least busy worker): {head, identified, metadata}.
  async identify(file) {
    await this.ready();
    const slot = this.slots.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const reply = await slot.request({ type: "identify", file });
    return reply.identified;
  }

  cancel() {
    for (const s of this.slots) s.worker.postMessage({ type: "cancel" });
  }

  // Runs `plan` ({prefixes, bodies}); `fileOf(path)` gives each job's File.
  // Calls onResult(result) for each file, onProgress(path, doneBytes) as
  // bytes are hashed. Rejects with Cancelled after cancel().
  async run(plan, fileOf, { onResult, onProgress }) {
    await this.ready();
    if (this.running) throw new Error("a hash run is already in progress");
    this.running = true;
    for (const s of this.slots) s.onProgress = onProgress;
    try {
      const prefixJobs = new Map(plan.prefixes.map((j) => [j.path, j]));
      await this.#phase(plan.prefixes, fileOf, prefixJobs, onResult);
      const bodies = [...plan.bodies].sort((a, b) => b.size - a.size || (a.path < b.path ? -1 : 1));
      await this.#phase(bodies, fileOf, prefixJobs, onResult);
    } finally {
      this.running = false;
      for (const s of this.slots) s.onProgress = null;
    }
  }

  // Every job of one phase, each on the first free worker; a body goes
  // preferably to a worker that already holds its metadata states.
  async #phase(jobs, fileOf, prefixJobs, onResult) {
    const queue = [...jobs];
    let failure = null;
    const take = (slot) => {
      const i = queue.findIndex((j) => j.prefixes.every((p) => slot.prefixes.has(p)));
      return queue.splice(i >= 0 ? i : 0, 1)[0];
    };
    const drive = async (slot) => {
      while (queue.length > 0 && !failure) {
        const job = take(slot);
        const missing = job.prefixes
          .filter((p) => !slot.prefixes.has(p))
          .map((p) => ({ job: prefixJobs.get(p) ?? metadataJob(p, fileOf(p)), file: fileOf(p) }));
        try {
          const reply = await slot.request({ type: "hash", job, file: fileOf(job.path), prefixes: missing });
          for (const m of missing) slot.prefixes.add(m.job.path);
          if (job.isPrefix) slot.prefixes.add(job.path);
          onResult(reply.result, reply.hashMs);
        } catch (e) {
          if (!failure) {
            failure = e;
            // Stop the other workers too: the run has failed.
            if (!(e instanceof Cancelled)) this.cancel();
          }
        }
      }
    };
    await Promise.all(this.slots.map(drive));
    if (failure) throw failure;
  }
}

// A metadata file hashed again by another worker (its digest is already
// known, only its state is needed): the job as the plan would give it.
function metadataJob(path, file) {
  return { path, size: file.size, isPrefix: true, prefixes: [] };
}
