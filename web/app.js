// The page: collects the user's files, has the workers hash them, and shows
// the catalog the wasm core builds from them. Every rule of the catalog
// lives in the core (ssgen-wasm); this file only moves data and draws.
//
// Hooks for automated checks (stable): inputs [data-testid=folder-input]
// and [data-testid=files-input]; the documents in [data-testid=index-json]
// and [data-testid=images-json]; <body data-state> is loading, ready,
// working, done, cancelled or error (with the message in #error), and
// <body data-run> numbers the runs (each drop or choice) from 1.
// ?timestamp=<unix seconds> fixes `updated`, as `ssgen build --timestamp`.
// In export mode, [data-testid=merge-input] takes the server's images.json.

import init, * as ssgen from "./pkg/ssgen_wasm.js";
import { Cancelled, Pool } from "./pool.js";
import { filesFromDrop, filesFromFolderInput, head, mapLimit } from "./files.js";

const $ = (sel) => document.querySelector(sel);
const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
};

// The fields of the export form that place the image (the core checks
// each: ssgen.fieldProblem).
const PLACE_FIELDS = ["os", "release", "arch", "variant", "version"];

// The fixed ?timestamp=, or null: each run then takes the time it starts.
const fixedTimestamp = readTimestamp();
let pool = null;
let run = null; // the current Run
// The server root's paths, from the core (ssgen.vocabulary()).
let vocab = null;
const started = start();

function readTimestamp() {
  const raw = new URLSearchParams(location.search).get("timestamp");
  if (raw === null) return null;
  if (!/^-?\d+$/.test(raw)) {
    // Reported once the page is up: a wrong value must not go unnoticed.
    return { invalid: raw };
  }
  return Number(raw);
}

function runTimestamp() {
  return fixedTimestamp ?? Math.floor(Date.now() / 1000);
}

// Says which `updated` the documents carry, and where it comes from: once a
// catalog is built, the very string it holds.
function showUpdated(out = null) {
  const fixed = fixedTimestamp !== null;
  const source = fixed ? "from ?timestamp=" : "now";
  let text;
  if (!out) {
    text = fixed ? `updated: ${new Date(fixedTimestamp * 1000).toUTCString()} (${source})` : "updated: the time of the build (now)";
  } else if (out.updatedKept) {
    const catalog = baseName(vocab.imagesJson);
    const whose = out.merged ? `the server's ${catalog}: nothing added to it` : `the published ${catalog}: nothing else changed`;
    text = `updated: ${out.updated} (kept from ${whose})`;
  } else {
    text = `updated: ${out.updated} (${source})`;
  }
  $("#timestamp-note").textContent = text;
}

function setState(state) {
  document.body.dataset.state = state;
}

function showError(message) {
  const box = $("#error");
  box.textContent = message;
  box.hidden = false;
  setState("error");
}

function clearError() {
  $("#error").hidden = true;
  $("#error").textContent = "";
}

async function start() {
  try {
    if (fixedTimestamp?.invalid !== undefined) {
      throw new Error(`?timestamp=${fixedTimestamp.invalid} is not whole Unix seconds (e.g. ?timestamp=1785556800)`);
    }
    const url = new URL("./pkg/ssgen_wasm_bg.wasm", import.meta.url);
    const response = await fetch(url);
    if (!response.ok) throw new Error(`cannot load ${url.pathname}: HTTP ${response.status}; was the page built (scripts/build-web.sh)?`);
    // One compiled module for this thread and every worker: after this
    // nothing more is fetched, so the page works offline once loaded.
    const module = await WebAssembly.compile(await response.arrayBuffer());
    await init({ module_or_path: module });
    vocab = ssgen.vocabulary();
    const size = Math.max(1, Math.min(navigator.hardwareConcurrency || 2, 4));
    pool = new Pool(module, size);
    await pool.ready();
    showUpdated();
    setState("ready");
  } catch (e) {
    showError(`The page could not start: ${e.message}`);
    throw e;
  }
}

// ---------------------------------------------------------------- inputs

function wireInputs() {
  const folder = $("#folder-input");
  folder.addEventListener("change", () => {
    const items = filesFromFolderInput(folder);
    folder.value = ""; // the same folder again must fire `change` again
    if (items.length) begin(() => treeRun(items));
  });
  const files = $("#files-input");
  files.addEventListener("change", () => {
    const list = [...files.files];
    files.value = "";
    if (list.length) begin(() => looseRun(list));
  });
  const drop = $("#drop");
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    // The DataTransfer is only readable during the event: take it now.
    const collected = filesFromDrop(e.dataTransfer);
    begin(async () => {
      const { tree, loose } = await collected;
      if (tree.length) return treeRun(tree);
      if (loose.length) return looseRun(loose);
      throw new Error("nothing to read in what was dropped");
    });
  });
  $("#cancel").addEventListener("click", () => run?.cancel());
  $("#clients").addEventListener("change", () => {
    // While hashing, the running rebuild picks the new choice up.
    if (run && !run.hashing) run.rebuild().catch(failed);
  });
  $("#merge-input").addEventListener("change", (e) => {
    const file = e.target.files[0];
    e.target.value = "";
    if (file && run instanceof LooseRun) run.mergeFrom(async () => ({ text: await file.text(), source: file.name })).catch(failed);
  });
  $("#merge-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const url = $("#merge-url").value.trim();
    if (url && run instanceof LooseRun) run.mergeFrom(() => fetchServerCatalog(url)).catch(failed);
  });
  $("#merge-off").addEventListener("click", () => {
    if (run instanceof LooseRun) run.mergeFrom(null).catch(failed);
  });
  $("#download-index").addEventListener("click", () => download(baseName(vocab.indexJson), $("#index-json").textContent));
  $("#download-images").addEventListener("click", () => download(baseName(vocab.imagesJson), $("#images-json").textContent));
}

// Starts a new run once the page is up, after stopping the previous one.
// A run that was replaced reports nothing: its files are no longer shown.
let runs = 0;
function begin(body) {
  const mine = ++runs;
  started
    .then(async () => {
      if (run) await run.stop();
      clearError();
      resetView();
      document.body.dataset.run = String(mine);
      setState("working");
      await body();
    })
    .catch((e) => {
      if (mine === runs) failed(e);
    });
}

function failed(e) {
  if (e instanceof Cancelled) {
    $("#overall-text").textContent = "Cancelled.";
    setState("cancelled");
  } else {
    showError(e.message ?? String(e));
  }
}

function resetView() {
  for (const id of ["#loose", "#progress", "#findings", "#deltas", "#output", "#merge"]) $(id).hidden = true;
  $("#files").replaceChildren();
  $("#diagnostics").replaceChildren();
  $("#index-json").textContent = "";
  $("#images-json").textContent = "";
}

// ------------------------------------------------------------- tree mode

// A folder laid out as the server root's images directory (or the root
// above it): list it, hash what the plan asks, build.
async function treeRun(items) {
  // The core says which files are the tree's, relative to the root.
  const tree = ssgen.treeFiles(items.map((it) => it.path));
  const files = tree.files.map(([i, path]) => ({ path, file: items[i].file }));
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const builder = new ssgen.Builder(runTimestamp());
  const current = new Run(builder);
  run = current;
  if (tree.previous !== null) builder.setPrevious(await items[tree.previous].file.text());
  const n = ssgen.headLength();
  // Heads and side files are tiny; read them a few at a time.
  const read = await mapLimit(files, 16, async ({ path, file }) =>
    ssgen.needsContents(path)
      ? { path, contents: new Uint8Array(await file.arrayBuffer()) }
      : { path, size: file.size, head: await head(file, n), file },
  );
  for (const r of read) {
    if (r.contents) builder.addSideFile(r.path, r.contents);
    else {
      builder.addFile(r.path, r.size, r.head);
      current.files.set(r.path, r.file);
    }
  }
  await current.rebuild();
}

// ------------------------------------------------------------ loose mode

// The files of one export: the workers say what each is (from its first
// bytes and, for a tarball, its metadata.yaml), and the core places them
// as `ssgen import` does.
async function looseRun(list) {
  const described = await Promise.all(
    list.map(async (file) => {
      try {
        return { name: file.name, size: file.size, ...(await pool.identify(file)) };
      } catch (e) {
        if (e instanceof Cancelled) throw e;
        throw new Error(`${file.name}: ${e.message}`);
      }
    }),
  );
  const exp = new ssgen.Export(described.map(({ name, size, head, identified }) => ({ name, size, head, identified })));
  const placements = exp.placements();
  if (!placements.some((p) => p.target)) {
    exp.free();
    throw new Error(
      `none of these files is an image file: ${placements.map((p) => `${p.name} (${p.reason})`).join(", ")}`,
    );
  }
  // The metadata.yaml that names the image: that of the first tarball placed.
  const source = described.find((d, i) => d.metadata && placements[i].target) ?? null;
  const current = new LooseRun(exp, list, placements, source);
  run = current;
  current.propose();
  $("#loose").hidden = false;
  await current.rebuild();
}

// ------------------------------------------------------------------ runs

// One set of files: hashes what the plan asks and shows the documents.
class Run {
  constructor(builder) {
    this.builder = builder;
    this.files = new Map(); // path → File
    this.hashing = null;
    this.stopped = false;
  }

  cancel() {
    if (this.hashing) pool.cancel();
  }

  // Stops hashing and waits for the workers to let go.
  async stop() {
    this.stopped = true;
    if (this.hashing) {
      pool.cancel();
      await this.hashing.catch(() => {});
    }
    this.builder?.free();
    this.builder = null;
  }

  async rebuild() {
    // Until nothing is left to hash: the clients may change while hashing.
    for (;;) {
      if (this.stopped) return;
      this.builder.setClients($("#clients").value);
      const scan = this.builder.scan();
      showDiagnostics(scan.diagnostics);
      drawDeltas(scan.deltas);
      if (scan.hasErrors) {
        throw new Error("The files have problems that block publishing; see the findings above.");
      }
      if (scan.plan.prefixes.length + scan.plan.bodies.length === 0) break;
      this.hashing = hashPlan(scan.plan, (path) => this.files.get(path), (r) => this.builder.record(r));
      try {
        await this.hashing;
      } finally {
        this.hashing = null;
      }
    }
    this.show(this.builder.build());
  }

  show(out) {
    const findings = showDiagnostics(out.diagnostics, out.lint);
    const what = out.merged
      ? `${out.merged.products} product(s) in the merged catalog, ${out.merged.added.length} version(s) added.`
      : `${out.products} product(s), ${out.images} image(s) per client.`;
    $("#summary").textContent = `${what} ${findings}`;
    showUpdated(out);
    $("#index-json").textContent = out.indexJson;
    $("#images-json").textContent = out.imagesJson;
    $("#output").hidden = false;
    setState("done");
  }
}

// Loose export files: hashed once where the core stages them (their
// digests do not depend on the directory), then placed where the form
// says, as often as the user edits it.
class LooseRun extends Run {
  constructor(exp, list, placements, source) {
    super(null);
    this.exp = exp;
    this.timestamp = runTimestamp();
    // The file whose metadata.yaml names the image ({name, metadata}), or null.
    this.source = source;
    // The server's images.json to merge into ({text, source}), or null.
    this.server = null;
    this.hashed = false;
    this.proposedVersion = null;
    this.names = new Map();
    placements.forEach((p, i) => {
      if (!p.staged) return;
      this.files.set(p.staged, list[i]);
      this.names.set(p.staged, p.name);
    });
    this.form = $("#loose-form");
    this.onInput = () => this.scheduleRebuild();
    this.form.addEventListener("input", this.onInput);
  }

  async stop() {
    this.form.removeEventListener("input", this.onInput);
    await super.stop();
    this.exp?.free();
    this.exp = null;
  }

  // Fills the form from metadata.yaml, as `ssgen import` files the image.
  propose() {
    const note = $("#metadata-note");
    const meta = this.source?.metadata;
    if (!meta) {
      note.textContent = "No metadata tarball among these files: fill in the fields.";
    } else {
      note.textContent = `Proposed from metadata.yaml in ${this.source.name}${meta.description ? ` (“${meta.description}”)` : ""}. Edit as needed.`;
    }
    for (const key of PLACE_FIELDS) this.form.elements[key].value = meta?.proposal[key] ?? "";
    this.proposedVersion = meta?.proposal.version ?? null;
    drawRequirements({});
  }

  // The version name the core gives the image in the product the form
  // names, beside the versions the server lists (when merging), for as
  // long as the user has not changed it.
  proposeVersion() {
    const meta = this.source?.metadata;
    const field = this.form.elements.version;
    if (!meta || field.value.trim() !== this.proposedVersion) return;
    this.proposedVersion = ssgen.proposeVersion(meta.creationDate, this.fields(), this.server?.text ?? null);
    field.value = this.proposedVersion;
  }

  // Merges into the server's catalog that `get()` reads (null: stop
  // merging), then builds again.
  async mergeFrom(get) {
    clearError();
    setState("working");
    this.server = get ? await get() : null;
    await this.rebuild();
  }

  scheduleRebuild() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.rebuild().catch(failed);
    }, 150);
  }

  fields() {
    const f = this.form.elements;
    const value = (k) => f[k].value.trim();
    return {
      ...Object.fromEntries(PLACE_FIELDS.map((k) => [k, value(k)])),
      osTitle: value("osTitle"),
      releaseTitle: value("releaseTitle"),
      aliases: value("aliases").split(",").map((a) => a.trim()).filter(Boolean),
      requirements: readRequirements(this.form),
    };
  }

  // What the core says of each field that places the image; marks the
  // fields it refuses.
  fieldProblems(fields) {
    const problems = [];
    for (const key of PLACE_FIELDS) {
      const problem = ssgen.fieldProblem(key, fields[key]);
      this.form.elements[key].setCustomValidity(problem ?? "");
      if (problem) problems.push(`${key}${fields[key] ? ` “${fields[key]}”` : ""}: ${problem}`);
    }
    return problems;
  }

  async rebuild() {
    // Edits while the files are hashed are read once hashing is over.
    if (this.stopped || this.hashing) return;
    clearError();
    if (!this.hashed) {
      this.hashing = hashPlan(
        this.exp.plan(),
        (path) => this.files.get(path),
        (r) => this.exp.record(r),
        (path) => this.names.get(path) ?? path,
      );
      try {
        await this.hashing;
      } finally {
        this.hashing = null;
      }
      this.hashed = true;
    }
    this.proposeVersion();
    const fields = this.fields();
    const problems = this.fieldProblems(fields);
    if (problems.length) {
      $("#output").hidden = true;
      showError(`To build the catalog, fix ${problems.join("; ")}.`);
      return;
    }
    const layout = this.exp.layout(fields);
    const builder = this.exp.builder(fields, this.timestamp);
    try {
      builder.setClients($("#clients").value);
      builder.mergeInto(this.server?.text ?? null);
      const scan = builder.scan();
      drawPlacements(layout, scan.products[0]);
      showDiagnostics(scan.diagnostics);
      if (scan.hasErrors) throw new Error("The fields have problems that block publishing; see the findings above.");
      let out;
      try {
        out = builder.build();
      } catch (e) {
        throw new Error(`${e.message}${this.server ? ` (${this.server.source})` : ""}`);
      }
      this.show(out);
      drawMerge(this.server, out.merged);
    } catch (e) {
      // No documents on show that are not those of the fields and files.
      $("#output").hidden = true;
      throw e;
    } finally {
      builder.free();
    }
  }
}

// Export mode's catalog lists the dropped image only: say that it replaces
// the server's, and offer to merge it into the one the server publishes.
function drawMerge(server, merged) {
  $("#merge").hidden = false;
  $("#replaces").hidden = Boolean(merged);
  $("#merge-off").hidden = !merged;
  $("#merged").hidden = !merged;
  if (merged) {
    const added = merged.added.length ? `adds ${merged.added.join(", ")}` : "adds nothing: the server lists this image already";
    $("#merged").textContent =
      `Merged into ${server.source}: ${merged.products} product(s), every image the server lists is kept, and this catalog ${added}. ` +
      "Upload the image files first, then these two files.";
  }
}

// The images.json a server publishes, from its URL, the URL of its
// index.json, or that of the images.json itself.
async function fetchServerCatalog(input) {
  let url;
  try {
    url = new URL(input);
  } catch {
    throw new Error(`${input} is not a URL (e.g. https://images.example.org/)`);
  }
  if (!url.pathname.endsWith(".json")) url = new URL(vocab.indexJson, url.href.endsWith("/") ? url.href : `${url.href}/`);
  let text = await fetchText(url);
  // An index: the core says where its products file is, from the index.
  let catalog;
  try {
    catalog = ssgen.catalogInIndex(text);
  } catch (e) {
    throw new Error(`${url.href} ${e.message}`);
  }
  if (catalog !== null) {
    url = new URL(catalog, url);
    text = await fetchText(url);
  }
  return { text, source: url.href };
}

async function fetchText(url) {
  let response;
  try {
    response = await fetch(url, { cache: "no-store" });
  } catch {
    throw new Error(
      `cannot read ${url.href}: the server does not answer, or does not let other pages read its files (it sends no Access-Control-Allow-Origin header); download its ${vocab.imagesJson} and choose it as a file instead`,
    );
  }
  if (!response.ok) throw new Error(`cannot read ${url.href}: HTTP ${response.status}`);
  return response.text();
}

// ------------------------------------------------------------- hashing

// Runs a plan on the workers with progress bars per file and overall.
// `label(path)` names a file for the user (default: its path).
async function hashPlan(plan, fileOf, record, label = (path) => path) {
  const jobs = [...plan.prefixes, ...plan.bodies];
  const total = jobs.reduce((n, j) => n + j.size, 0);
  const rows = new Map();
  const list = $("#files");
  list.replaceChildren();
  for (const job of jobs) {
    const bar = el("progress", { max: Math.max(job.size, 1), value: 0 });
    const text = el("span", { textContent: "waiting" });
    const name = label(job.path);
    const row = el("li", {}, el("span", { textContent: name, title: name }), bar, text);
    list.append(row);
    rows.set(job.path, { row, bar, text, size: job.size, done: 0, started: 0 });
  }
  $("#progress").hidden = false;
  const overall = $("#overall");
  const overallText = $("#overall-text");
  overall.max = Math.max(total, 1);
  $("#cancel").disabled = false;

  const began = performance.now();
  let hashingMs = 0;
  let doneBytes = 0;
  let frame = 0;
  const draw = () => {
    frame = 0;
    const seconds = (performance.now() - began) / 1000;
    const rate = seconds > 0 ? doneBytes / seconds : 0;
    overall.value = doneBytes;
    const eta = rate > 0 ? (total - doneBytes) / rate : 0;
    overallText.textContent = `${formatBytes(doneBytes)} of ${formatBytes(total)} · ${formatBytes(rate)}/s` +
      (doneBytes < total && rate > 0 ? ` · ${Math.ceil(eta)} s left` : "");
    for (const r of rows.values()) {
      r.bar.value = r.done;
      if (r.done >= r.size && r.finished) continue;
      if (r.started) {
        const s = (performance.now() - r.started) / 1000;
        r.text.textContent = `${Math.floor((100 * r.done) / Math.max(r.size, 1))}% · ${formatBytes(s > 0 ? r.done / s : 0)}/s`;
      }
    }
  };
  const schedule = () => {
    if (!frame) frame = requestAnimationFrame(draw);
  };

  try {
    await pool.run(plan, fileOf, {
      onProgress(path, done) {
        const r = rows.get(path);
        if (!r) return;
        if (!r.started) r.started = performance.now();
        doneBytes += done - r.done;
        r.done = done;
        schedule();
      },
      onResult(result, hashMs) {
        record(result);
        hashingMs += hashMs;
        const r = rows.get(result.path);
        if (r) {
          doneBytes += r.size - r.done;
          r.done = r.size;
          r.finished = true;
          r.row.classList.add("done");
          r.text.textContent = `sha256 ${result.sha256.slice(0, 12)}…`;
        }
        schedule();
      },
    });
  } finally {
    $("#cancel").disabled = true;
  }
  const ms = performance.now() - began;
  cancelAnimationFrame(frame);
  draw();
  // For benchmarks: bytes hashed, wall time, and the time the workers
  // spent inside the hasher (summed over workers) in the last run.
  document.body.dataset.hashBytes = String(total);
  document.body.dataset.hashMs = ms.toFixed(1);
  document.body.dataset.hashBusyMs = hashingMs.toFixed(1);
  overallText.textContent = `Hashed ${formatBytes(total)} in ${(ms / 1000).toFixed(1)} s (${formatBytes(total / Math.max(ms / 1000, 1e-3))}/s).`;
}

// ------------------------------------------------------------- findings

// The core's diagnostics about the files, then (once built) the lint's
// findings: what LXD and Incus would hide or refuse in the catalog, and why.
// The summary counts exactly the cards drawn; returns its text.
function showDiagnostics(diagnostics, lint = null) {
  const item = (level, where, message, help, tag = "") =>
    el(
      "li",
      { className: level },
      el("span", { className: "level", textContent: level }),
      tag ? el("span", { className: "tag", textContent: tag }) : "",
      el("code", { textContent: where }),
      ` ${message}`,
      help ? el("span", { className: "help", textContent: `Fix: ${help}` }) : "",
    );
  const files = diagnostics.map((d) => item(d.level, d.path, d.message, d.help));
  const findings = (lint?.findings ?? []).map((f) =>
    item(f.severity, f.location, f.message, f.help, `${f.code} · ${f.clients.join(", ")}`),
  );
  $("#diagnostics").replaceChildren(...files, ...findings);
  $("#findings").hidden = false;
  const levels = [...files, ...findings].map((card) => card.className);
  let text = `Findings: ${countLevels(levels)}`;
  if (lint && levels.length) {
    text += ` (about the files: ${countLevels(diagnostics.map((d) => d.level))}; ` +
      `what LXD and Incus make of the catalog: ${countLevels(lint.findings.map((f) => f.severity))})`;
  }
  text += ".";
  $("#summary").textContent = text;
  return text;
}

// "1 error, 3 warnings, 1 note", or "none".
function countLevels(levels) {
  const parts = [];
  for (const [level, plural] of [["error", "errors"], ["warning", "warnings"], ["note", "notes"]]) {
    const n = levels.filter((l) => l === level).length;
    if (n) parts.push(`${n} ${n === 1 ? level : plural}`);
  }
  return parts.join(", ") || "none";
}

// ----------------------------------------------------- loose-mode form

// The requirement keys the daemons act on and their meaningful value.
const KNOWN_REQUIREMENTS = [
  ["secureboot", "false", "VM cannot boot with Secure Boot"],
  ["cgroup", "v1", "needs a cgroup v1 host"],
  ["nesting", "true", "needs security.nesting"],
  ["privileged", "false", "must not run privileged (Incus)"],
  ["cdrom_agent", "true", "VM needs an agent:config disk (Incus)"],
  ["cdrom_cloud_init", "true", "VM needs a cloud-init:config disk (Incus)"],
];

function drawRequirements(initial) {
  const box = $("#requirements");
  box.replaceChildren(
    ...KNOWN_REQUIREMENTS.map(([key, value, meaning]) => {
      const input = el("input", { type: "checkbox", name: `req:${key}`, checked: initial[key] === value });
      input.dataset.value = value;
      return el("label", { className: "check", title: meaning }, el("span", {}, input, ` ${key}: "${value}"`), el("small", { textContent: meaning }));
    }),
  );
  const known = new Set(KNOWN_REQUIREMENTS.map(([k]) => k));
  $("#loose-form").elements.otherRequirements.value = Object.entries(initial)
    .filter(([k, v]) => !known.has(k) || KNOWN_REQUIREMENTS.find(([kk]) => kk === k)[1] !== v)
    .map(([k, v]) => `${k}=${v}`)
    .join(", ");
}

function readRequirements(form) {
  const out = {};
  for (const [key] of KNOWN_REQUIREMENTS) {
    const box = form.elements[`req:${key}`];
    if (box?.checked) out[key] = box.dataset.value;
  }
  for (const pair of form.elements.otherRequirements.value.split(",")) {
    const [k, ...rest] = pair.split("=");
    if (k.trim()) out[k.trim()] = rest.join("=").trim();
  }
  return out;
}

// Where each file goes for the form's fields, the small side files the
// form implies (written by the core as a build reads them), and how the
// clients will show the product.
function drawPlacements(layout, product) {
  const body = $("#placements tbody");
  body.replaceChildren(
    ...layout.files.map((p) =>
      el(
        "tr",
        {},
        el("td", {}, el("code", { textContent: p.name })),
        p.path ? el("td", {}, el("code", { textContent: p.path })) : el("td", { textContent: `left out: ${p.reason}` }),
        el("td", { textContent: p.ftype ?? "" }),
      ),
    ),
  );
  const box = $("#side-files");
  box.replaceChildren();
  if (layout.sideFiles.length) {
    box.append("Also put these small files there (ssgen build reads them): ");
    for (const s of layout.sideFiles) {
      const button = el("button", { type: "button", textContent: s.path });
      button.addEventListener("click", () => download(s.name, s.text));
      box.append(button, " ");
    }
  }
  if (product) {
    $("#default-aliases").textContent =
      `Clients will show “${product.osTitle} ${product.releaseTitle}”, with aliases ${product.aliases.join(", ") || "(none)"}.`;
  }
}

// The deltas of a dropped tree, as the catalog names them: a daemon that
// holds the base version downloads the delta instead of the whole root.
function drawDeltas(deltas) {
  $("#deltas").hidden = deltas.length === 0;
  $("#deltas-table tbody").replaceChildren(
    ...deltas.map((d) =>
      el(
        "tr",
        {},
        el("td", {}, el("code", { textContent: d.product })),
        el("td", {}, el("code", { textContent: d.version })),
        el("td", {}, el("code", { textContent: d.base })),
        el("td", { textContent: formatBytes(d.size), title: `${d.path}, ${d.size} bytes` }),
      ),
    ),
  );
}

// ------------------------------------------------------------------ misc

function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
  const a = el("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// The last component of a path.
function baseName(path) {
  return path.slice(path.lastIndexOf("/") + 1);
}

function formatBytes(n) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i += 1;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

wireInputs();
