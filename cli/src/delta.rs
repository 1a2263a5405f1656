//! Image diffs in the build: makes the VCDIFF deltas the core plans, with
//! the core's encoder ([`ssgen_core::vcdiff`]), and proves every delta the
//! catalog would name (made here or by hand) by decoding it with another
//! decoder (oxidelta's) and comparing the result's sha256 with its
//! target's, before the catalog names it.
//!
//! - Written like every other file, through the root's confinement
//!   ([`Root::place`]: no link on the way leads out of the root): into a
//!   hidden temporary file in the target's version directory (one a killed
//!   build leaves is cleaned up by the next, under the root lock), flushed,
//!   decoded and checked, then renamed into place where no file of that
//!   name exists (a delta is never replaced). A write that fails (a full disk) fails the build, so the
//!   published catalog stays as it was.
//! - Cached: what was made, found too large or found wrong is recorded in
//!   `ROOT/.ssgen/deltas.json` against the sha256 of its base and target
//!   (and of the delta), so an unchanged tree encodes and decodes nothing.
//! - Parallel across products, in memory bounded by [`budget`]: a delta
//!   holds an index of its base (a quarter of the base, 256 MiB at most)
//!   and about 40 MiB of windows and buffers (see [`encode_cost`]); the
//!   base is read from its file where the encoder and the check need it,
//!   and its digest is checked as it is indexed. Deltas run side by side
//!   only while their sum fits in half the memory available; one that does
//!   not fit in all of it is skipped with a warning. Checking a delta
//!   already on disk holds one window (at most 16 MiB) and its copies.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, ErrorKind, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use anyhow::{Context, Result, anyhow};
use clap::Args;
use oxidelta::compress::decoder::DeltaDecoder;
use oxidelta::vcdiff::decoder::{DecodeError, SourceProvider};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use ssgen_core::delta::{self, Job, Published, Settings};
use ssgen_core::withdrawn::{self, Withdrawn};
use ssgen_core::{Config, Diagnostic, Digests, Entry, HEAD_LEN, Level, Scan, Sha256, vcdiff};

use crate::cache::Stamp;
use crate::confine::{self, Place, Renamed, Root};
use crate::exit::Invalid;
use crate::walk::{Listed, Listing};

/// The deltas options of every command that rebuilds the catalog. Unset,
/// each comes from the root's config file, else from its default.
#[derive(Debug, Clone, Default, Args)]
pub struct DeltaOptions {
    /// Make deltas from the N previous versions of each product to the
    /// newest (0: none). Default: `deltas` in ROOT/.ssgen/config.json, else 1.
    #[arg(long, value_name = "N")]
    pub deltas: Option<u32>,

    /// Publish a delta only when it is smaller than PERCENT of the image it
    /// patches. Default: `delta_max_percent` in ROOT/.ssgen/config.json,
    /// else 60.
    #[arg(long, value_name = "PERCENT")]
    pub delta_max_percent: Option<u32>,
}

/// The root's settings file, `ROOT/.ssgen/config.json`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    deltas: Option<u32>,
    delta_max_percent: Option<u32>,
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Where a root keeps its settings.
pub fn config_path(root: &Path) -> PathBuf {
    root.join(".ssgen").join("config.json")
}

/// The delta settings for `root`: each option from the command line, else
/// from the root's config file, else the default. The one place they are
/// decided, so that `build`, `watch`, `serve --watch`, the upload API and
/// `import` make the same deltas.
pub fn settings(root: &Path, options: &DeltaOptions) -> Result<Settings> {
    let path = config_path(root);
    let file = match std::fs::read(&path) {
        // Read as a value first: serde would take an array for the struct
        // (`[2, 50]`) and name the struct in its errors.
        Ok(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|v| match v {
                serde_json::Value::Object(_) => {
                    serde_json::from_value::<ConfigFile>(v).map_err(|e| e.to_string())
                }
                other => Err(format!("is {}, not a JSON object", json_kind(&other))),
            })
            .map_err(|e| {
                Invalid(format!(
                    "{}: {e}; write a JSON object such as {{\"deltas\": 1, \"delta_max_percent\": 60}}",
                    path.display()
                ))
            })?,
        Err(e) if e.kind() == ErrorKind::NotFound => ConfigFile::default(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let defaults = Settings::default();
    let settings = Settings {
        count: options.deltas.or(file.deltas).unwrap_or(defaults.count),
        max_percent: options
            .delta_max_percent
            .or(file.delta_max_percent)
            .unwrap_or(defaults.max_percent),
    };
    if !(1..=100).contains(&settings.max_percent) {
        return Err(Invalid(format!(
            "delta_max_percent {} (from --delta-max-percent or {}): give a percentage from 1 to 100",
            settings.max_percent,
            path.display()
        ))
        .into());
    }
    Ok(settings)
}

/// The deltas step of a rebuild, between hashing and the catalog.
pub struct Step<'a> {
    /// The server root, where deltas are written.
    pub root: &'a Root,
    /// The command line's delta options.
    pub options: &'a DeltaOptions,
    /// The build's configuration (the scan is redone with it when deltas
    /// are added).
    pub config: &'a Config,
    /// Write nothing: no delta is made, and the record is not saved.
    pub dry_run: bool,
    /// In a dry run, say on stderr which deltas a build would make.
    pub announce: bool,
}

impl Step<'_> {
    /// Makes the deltas the core plans (unless a dry run), adds them to
    /// `listing` and `digests`, then checks every delta of the scan and
    /// withholds those that do not decode to their target. Returns the scan
    /// the catalog is to be built from.
    pub fn run(
        &self,
        listing: &mut Listing,
        mut scan: Scan,
        digests: &mut Digests,
    ) -> Result<Scan> {
        let settings = settings(self.root.path(), self.options)?;
        let mut records = Records::load(self.root.path());
        let before = records.clone();
        let mut seen = BTreeSet::new();

        if settings.count > 0 {
            let mut todo = Vec::new();
            // Between the versions the catalog publishes: a copy of another
            // version is left out of it, and gets no delta (nor is one
            // written into its directory, which may be a link to the other).
            let published = ssgen_core::without_duplicates(&scan, digests, self.config.clients)?;
            for job in delta::plan(&published, &listing.entries(), settings) {
                let (Some(base), Some(target)) =
                    (digests.files.get(&job.base), digests.files.get(&job.target))
                else {
                    continue;
                };
                if base == target {
                    // The same root: nothing to patch.
                    continue;
                }
                seen.insert(job.path.clone());
                let tried = records
                    .deltas
                    .get(&job.path)
                    .filter(|r| r.base == base.to_hex() && r.target == target.to_hex());
                // A delta found wrong was a file on disk, now gone (a
                // listed file is never planned over): make the right one.
                let skip = match tried.map(|r| &r.outcome) {
                    Some(Outcome::TooLarge { at_least, encoder }) => {
                        *encoder == ENCODER && !settings.keeps(*at_least, job.target_size)
                    }
                    Some(Outcome::Good | Outcome::Wrong { .. }) | None => false,
                };
                if !skip {
                    todo.push((job, *base, *target));
                }
            }
            if self.dry_run {
                if self.announce {
                    for (job, ..) in &todo {
                        eprintln!(
                            "note: {}: a build would make this delta from {}, and publish it if under {} % of the {} bytes of its target; a dry run makes none, so the catalog printed lacks it",
                            job.path, job.base_version, settings.max_percent, job.target_size
                        );
                    }
                }
                return self.check(scan, digests, (before, records), seen);
            }
            let budget = budget();
            let outcomes = parallel(
                &todo,
                |(job, ..)| encode_cost(job.base_size),
                budget.share,
                |(job, base, target)| make(self.root, job, *base, *target, settings, budget.all),
            );
            let mut added = false;
            let mut failure = None;
            for ((job, base, target), outcome) in todo.iter().zip(outcomes) {
                let record = |outcome| Record {
                    base: base.to_hex(),
                    target: target.to_hex(),
                    delta: None,
                    outcome,
                };
                match outcome {
                    Ok(Made::Written { listed, sha256 }) => {
                        digests.files.insert(job.path.clone(), sha256);
                        listing.files.insert(job.path.clone(), *listed);
                        records.deltas.insert(
                            job.path.clone(),
                            Record {
                                delta: Some(sha256.to_hex()),
                                ..record(Outcome::Good)
                            },
                        );
                        added = true;
                    }
                    Ok(Made::TooLarge { at_least }) => {
                        eprintln!(
                            "note: {}: no delta from {}: it would be at least {at_least} bytes, not under {} % of the {}-byte target",
                            job.path, job.base_version, settings.max_percent, job.target_size
                        );
                        records.deltas.insert(
                            job.path.clone(),
                            record(Outcome::TooLarge {
                                at_least,
                                encoder: ENCODER,
                            }),
                        );
                    }
                    Ok(Made::Skipped(why)) => warn(
                        &job.path,
                        &why,
                        "the build goes on without this delta; fix the file, or set deltas to 0",
                    ),
                    Ok(Made::Exists) => {}
                    Err(e) => {
                        failure.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = failure {
                return Err(e.context(
                    "no delta was published and the published catalog is unchanged; free space (or set \"deltas\": 0 in .ssgen/config.json) and build again",
                ));
            }
            if added {
                scan = ssgen_core::scan(&listing.entries(), self.config);
            }
        }
        self.check(scan, digests, (before, records), seen)
    }

    /// Checks every delta of `scan` (made here or not), withholds those
    /// that do not decode to their target, and saves what was learnt
    /// (unless a dry run) when it differs from what was loaded.
    fn check(
        &self,
        mut scan: Scan,
        digests: &Digests,
        (before, mut records): (Records, Records),
        mut seen: BTreeSet<String>,
    ) -> Result<Scan> {
        // Every delta the catalog would name is proved, made here or not.
        let mut unproved = Vec::new();
        for p in delta::published(&scan) {
            let (Some(d), Some(b), Some(t)) = (
                digests.files.get(&p.path),
                digests.files.get(&p.base),
                digests.files.get(&p.target),
            ) else {
                continue;
            };
            seen.insert(p.path.clone());
            let record = Record {
                base: b.to_hex(),
                target: t.to_hex(),
                delta: Some(d.to_hex()),
                outcome: Outcome::Good,
            };
            match records.deltas.get(&p.path) {
                Some(r) if r.same_files(&record) => {
                    if let Outcome::Wrong { why } = &r.outcome {
                        let why = why.clone();
                        withhold(&mut scan, &p.path, &why);
                    }
                }
                _ => unproved.push((p, record)),
            }
        }
        let verdicts = parallel(
            &unproved,
            |_| 0,
            0,
            |(p, record)| check_on_disk(self.root.path(), p, record),
        );
        for ((p, mut record), verdict) in unproved.into_iter().zip(verdicts) {
            match verdict {
                Verdict::Good => {}
                Verdict::Wrong(why) => {
                    withhold(&mut scan, &p.path, &why);
                    record.outcome = Outcome::Wrong { why };
                }
                Verdict::Unchecked(why) => {
                    warn(
                        &p.path,
                        &why,
                        "install xdelta3 (Debian: apt-get install xdelta3) so that ssgen can check it",
                    );
                    continue;
                }
            }
            records.deltas.insert(p.path, record);
        }

        if !self.dry_run {
            records.deltas.retain(|path, _| seen.contains(path));
            if records != before {
                records.save(self.root)?;
            }
        }
        Ok(scan)
    }
}

/// Withdraws the deltas `gone` names with `.withdrawn` markers in their
/// version directories, since `now`, merged with a marker already there
/// (which may list other files): they leave the catalog at once, and
/// `ssgen prune` deletes them after the grace period, like any withdrawn
/// file. A version a marker already withdraws whole needs nothing.
pub fn withdraw(root: &Root, gone: &[Published], now: i64) -> Result<()> {
    let mut by_dir: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for p in gone {
        let (dir, name) = p.path.rsplit_once('/').unwrap_or(("", &p.path));
        by_dir.entry(dir).or_default().push(name);
    }
    for (dir, names) in by_dir {
        let rel = format!("{dir}/{}", withdrawn::FILE_NAME);
        let mut files = match std::fs::read(root.join(&rel)) {
            // One that cannot be parsed withdraws its whole version too.
            Ok(bytes) => match Withdrawn::parse(&bytes) {
                Ok(Withdrawn { files: Some(f), .. }) => f,
                Ok(Withdrawn { files: None, .. }) | Err(_) => continue,
            },
            Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read {}", root.join(&rel).display()));
            }
        };
        files.extend(names.iter().map(|n| (*n).to_owned()));
        files.sort();
        files.dedup();
        let marker = Withdrawn {
            since: now,
            files: Some(files),
        };
        root.place(&rel, false)?
            .write_atomic(marker.to_text().as_bytes())?;
    }
    Ok(())
}

/// The deltas of `scan` proved as a build proves them (by decoding, or
/// by what the root's record learnt of the same files), those that do not
/// decode to their target withheld with a warning: for a push, which sends
/// the tree as it is, makes no delta and writes nothing to the root.
pub fn proved(
    root: &Root,
    listing: &mut Listing,
    scan: Scan,
    digests: &mut Digests,
    config: &Config,
) -> Result<Scan> {
    Step {
        root,
        options: &DeltaOptions::default(),
        config,
        dry_run: true,
        announce: false,
    }
    .run(listing, scan, digests)
}

fn warn(path: &str, message: &str, help: &str) {
    eprintln!("{}", Diagnostic::new(Level::Warning, path, message, help));
}

fn withhold(scan: &mut Scan, path: &str, why: &str) {
    delta::withhold(scan, path, why);
    if let Some(d) = scan.diagnostics.last() {
        eprintln!("{d}");
    }
}

/// What was learnt of each delta, by its path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Records {
    format: u32,
    deltas: BTreeMap<String, Record>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    /// sha256 of the base root file.
    base: String,
    /// sha256 of the target root file.
    target: String,
    /// sha256 of the delta file, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delta: Option<String>,
    outcome: Outcome,
}

impl Record {
    fn same_files(&self, other: &Record) -> bool {
        self.base == other.base && self.target == other.target && self.delta == other.delta
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
enum Outcome {
    /// The delta decodes to the target.
    Good,
    /// Encoding stopped past the size limit, after `at_least` bytes, with
    /// the encoder [`ENCODER`] names (0 where a record names none: another
    /// encoder, whose finding is tried again).
    TooLarge {
        at_least: u64,
        #[serde(default)]
        encoder: u32,
    },
    /// The delta does not decode to the target.
    Wrong { why: String },
}

const RECORDS_FORMAT: u32 = 1;

impl Records {
    fn path(root: &Path) -> PathBuf {
        root.join(".ssgen").join("deltas.json")
    }

    /// A missing, unreadable or outdated record is empty: it only saves
    /// work.
    fn load(root: &Path) -> Self {
        std::fs::read(Self::path(root))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Records>(&bytes).ok())
            .filter(|r| r.format == RECORDS_FORMAT)
            .unwrap_or(Records {
                format: RECORDS_FORMAT,
                deltas: BTreeMap::new(),
            })
    }

    fn save(&self, root: &Root) -> Result<()> {
        let text = serde_json::to_vec(self).context("cannot serialise the delta record")?;
        root.place(".ssgen/deltas.json", true)?
            .write_atomic(&text)
            .context("cannot write the delta record")
    }
}

/// The memory deltas may use: `share` for all running at once, `all` for
/// one alone.
#[derive(Clone, Copy, Debug)]
struct Budget {
    share: u64,
    all: u64,
}

/// Half of the memory available now (all of it for a delta alone), from
/// /proc/meminfo; 4 GiB where it cannot be read.
fn budget() -> Budget {
    let available = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(4 << 30);
    Budget {
        share: available / 2,
        all: available,
    }
}

/// Memory one delta takes, at most: while it is encoded, the index of the
/// base ([`vcdiff::Index::memory`]: a quarter of the base, 256 MiB at most),
/// the encoder's window and tables, what it writes of one window, and the
/// read and write buffers here; then, while it is checked, the decoder's
/// window, its sections and its largest copy (a window each). The base
/// itself is read where needed, never held.
fn encode_cost(base_size: u64) -> u64 {
    let window = vcdiff::WINDOW as u64;
    let buffers = 2 * CHUNK as u64;
    let encode =
        vcdiff::Index::memory(base_size) + vcdiff::Encoder::memory(vcdiff::WINDOW) + window;
    let check = 3 * window;
    encode.max(check) + buffers
}

/// Which encoder made a record's finding: one that found a delta too
/// large says nothing of what another would make. Raised whenever the
/// encoder finds other matches.
const ENCODER: u32 = 1;
/// Read and write size for the files the encoder and the checks stream.
const CHUNK: usize = 1 << 20;

/// What became of one planned delta.
enum Made {
    Written {
        listed: Box<Listed>,
        sha256: Sha256,
    },
    TooLarge {
        at_least: u64,
    },
    /// Not made, for the reason given (a warning; the build goes on).
    Skipped(String),
    /// Another writer put a file of that name there meanwhile.
    Exists,
}

/// A writer that hashes, counts, keeps the first bytes, and refuses to
/// grow past `limit`.
struct Sink<W> {
    inner: W,
    sha: sha2::Sha256,
    written: u64,
    limit: u64,
    over: bool,
    head: Vec<u8>,
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.written + buf.len() as u64 > self.limit {
            self.over = true;
            return Err(std::io::Error::other("the delta grew past its size limit"));
        }
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.written += n as u64;
        let room = HEAD_LEN.saturating_sub(self.head.len()).min(n);
        self.head.extend_from_slice(&buf[..room]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A base file, read where the encoder asks.
struct BaseFile<'a>(&'a File);

impl vcdiff::Base for BaseFile<'_> {
    type Error = std::io::Error;

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.0.read_exact_at(buf, offset).map_err(|e| {
            if e.kind() == ErrorKind::UnexpectedEof {
                std::io::Error::new(e.kind(), "it is shorter than when it was indexed")
            } else {
                e
            }
        })
    }
}

/// What identifies the bytes of an open file: any write to it changes its
/// ctime.
fn identity(file: &File) -> std::io::Result<Stamp> {
    Ok(Stamp::of(&file.metadata()?))
}

/// Indexes the base, read once in order, checking that it still has the
/// digest it was hashed with.
fn index_base(file: &File, path: &Path, want: Sha256) -> Result<vcdiff::Index, String> {
    let cannot = |e: std::io::Error| format!("cannot read the base {}: {e}", path.display());
    let len = file.metadata().map_err(cannot)?.len();
    let mut builder = vcdiff::IndexBuilder::new(len);
    let mut sha = sha2::Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut reader = file;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(cannot(e)),
        };
        sha.update(&buf[..n]);
        builder.push(&buf[..n]);
    }
    if Sha256(sha.finalize().into()) != want {
        return Err(format!(
            "the base {} changed since it was hashed; the next build makes the delta",
            path.display()
        ));
    }
    Ok(builder.finish())
}

/// Makes one delta. `Err` only for a failure to write (the build stops);
/// a base or target that cannot be read is a warning.
fn make(
    root: &Root,
    job: &Job,
    base_sha: Sha256,
    target_sha: Sha256,
    settings: Settings,
    all: u64,
) -> Result<Made> {
    let cost = encode_cost(job.base_size);
    if cost > all {
        return Ok(Made::Skipped(format!(
            "making a delta from {} needs about {} MiB of memory, and {} MiB are available",
            job.base,
            cost >> 20,
            all >> 20
        )));
    }
    let base_path = root.join(&job.base);
    let base = match File::open(&base_path) {
        Ok(f) => f,
        Err(e) => {
            return Ok(Made::Skipped(format!(
                "cannot read the base {}: {e}",
                base_path.display()
            )));
        }
    };
    let before = identity(&base);
    let index = match index_base(&base, &base_path, base_sha) {
        Ok(index) => index,
        Err(why) => return Ok(Made::Skipped(why)),
    };
    let target_path = root.join(&job.target);
    let mut target = match File::open(&target_path) {
        Ok(f) => f,
        Err(e) => {
            return Ok(Made::Skipped(format!(
                "cannot read the target {}: {e}",
                target_path.display()
            )));
        }
    };
    // Written through the root's confinement: no link on the way can
    // take the delta (or its temporary file) outside the root.
    let (dir, name) = job
        .path
        .rsplit_once('/')
        .context("a delta path has a directory")?;
    let places = root.place(&job.path, false).and_then(|place| {
        let tmp = root.place(&format!("{dir}/{}", confine::temp_name(name)), false)?;
        Ok((place, tmp))
    });
    let (place, tmp) = match places {
        Ok(p) => p,
        Err(e) => return Ok(Made::Skipped(format!("{e:#}"))),
    };
    let files = Files {
        tmp: &tmp,
        place: &place,
        base: &base,
        base_path: &base_path,
        target: &mut target,
        target_path: &target_path,
    };
    let result = encode_and_publish(files, index, &before, target_sha, job, settings);
    if !matches!(result, Ok(Made::Written { .. })) {
        let _ = tmp.remove();
    }
    result
}

/// The files one delta is made from and written to.
struct Files<'a> {
    tmp: &'a Place,
    place: &'a Place,
    base: &'a File,
    base_path: &'a Path,
    target: &'a mut File,
    target_path: &'a Path,
}

/// Why an encoding stopped.
enum Stop {
    Base(std::io::Error),
    Target(std::io::Error),
    Write(std::io::Error),
}

fn encode_and_publish(
    files: Files<'_>,
    index: vcdiff::Index,
    before: &std::io::Result<Stamp>,
    target_sha: Sha256,
    job: &Job,
    settings: Settings,
) -> Result<Made> {
    let Files {
        tmp,
        place,
        base,
        base_path,
        target,
        target_path,
    } = files;
    let file = tmp.create_new()?;
    let mut sink = Sink {
        inner: std::io::BufWriter::with_capacity(CHUNK, file),
        sha: sha2::Sha256::new(),
        written: 0,
        limit: settings.size_limit(job.target_size),
        over: false,
        head: Vec::new(),
    };
    let mut target_hash = sha2::Sha256::new();
    let mut read = 0u64;
    let encoded: Result<vcdiff::Stats, Stop> = (|| {
        let mut encoder = vcdiff::Encoder::new(&index);
        let mut source = BaseFile(base);
        let mut buf = vec![0u8; CHUNK];
        let mut out = Vec::new();
        loop {
            let n = match target.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(Stop::Target(e)),
            };
            target_hash.update(&buf[..n]);
            read += n as u64;
            encoder
                .push(&buf[..n], &mut source, &mut out)
                .map_err(Stop::Base)?;
            sink.write_all(&out).map_err(Stop::Write)?;
            out.clear();
        }
        let stats = encoder.finish(&mut source, &mut out).map_err(Stop::Base)?;
        sink.write_all(&out).map_err(Stop::Write)?;
        sink.flush().map_err(Stop::Write)?;
        Ok(stats)
    })();
    drop(index);
    if sink.over {
        return Ok(Made::TooLarge {
            at_least: sink.limit.saturating_add(1),
        });
    }
    match encoded {
        Ok(_) => {}
        Err(Stop::Base(e)) => {
            return Ok(Made::Skipped(format!(
                "cannot read the base {}: {e}",
                base_path.display()
            )));
        }
        Err(Stop::Target(e)) => {
            return Ok(Made::Skipped(format!(
                "cannot read the target {}: {e}",
                target_path.display()
            )));
        }
        Err(Stop::Write(e)) => {
            return Err(e).with_context(|| format!("cannot write {}", tmp.path().display()));
        }
    }
    if read != job.target_size || Sha256(target_hash.finalize().into()) != target_sha {
        return Ok(Made::Skipped(format!(
            "the target {} changed since it was hashed; the next build makes the delta",
            job.target
        )));
    }
    let Sink {
        inner, sha, head, ..
    } = sink;
    let file = inner
        .into_inner()
        .map_err(std::io::IntoInnerError::into_error)
        .with_context(|| format!("cannot write {}", tmp.path().display()))?;
    file.sync_all()
        .with_context(|| format!("cannot write {}", tmp.path().display()))?;
    drop(file);
    let sha256 = Sha256(sha.finalize().into());

    // Proved before it is named: decoded by another decoder against the
    // same base file, the result must be the target, byte for byte; and
    // the base must not have changed meanwhile (its digest was checked as
    // it was indexed).
    let delta = tmp.open_read()?;
    let mut source = FileSource {
        file: base,
        len: job.base_size,
    };
    if let Err(why) = decodes_to(delta, &mut source, job.target_size, target_sha) {
        return Ok(Made::Skipped(format!(
            "the delta made from {} does not decode to its target ({why}); it is not published",
            job.base
        )));
    }
    match (before, identity(base)) {
        (Ok(a), Ok(b)) if *a == b => {}
        _ => {
            return Ok(Made::Skipped(format!(
                "the base {} changed while the delta was made; the next build makes it",
                job.base
            )));
        }
    }

    // Never over a file of that name: another writer's, or a hand-made
    // one, is kept.
    if tmp.rename_noreplace(place)? == Renamed::Exists {
        return Ok(Made::Exists);
    }
    let meta = place
        .open_read()?
        .metadata()
        .with_context(|| format!("cannot stat {}", place.path().display()))?;
    let mut entry = Entry::file(job.path.clone(), meta.len());
    entry.head = Some(head);
    Ok(Made::Written {
        listed: Box::new(Listed {
            entry,
            stamp: Stamp::of(&meta),
        }),
        sha256,
    })
}

/// Hashes what it is given, and counts it.
struct HashSink {
    sha: sha2::Sha256,
    len: u64,
}

impl Write for HashSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.sha.update(buf);
        self.len += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Decodes `delta` against `source`; `Ok` when the result has `size` bytes
/// and the sha256 `want`.
fn decodes_to<S: SourceProvider>(
    delta: File,
    source: &mut S,
    size: u64,
    want: Sha256,
) -> Result<(), String> {
    let mut out = HashSink {
        sha: sha2::Sha256::new(),
        len: 0,
    };
    DeltaDecoder::new(BufReader::with_capacity(CHUNK, delta))
        .decode_to(source, &mut out)
        .map_err(|e| format!("it does not decode: {e}"))?;
    let got = Sha256(out.sha.finalize().into());
    if out.len != size || got != want {
        return Err(format!(
            "it decodes to {} bytes with sha256 {got}, not to the target's {size} bytes with sha256 {want}",
            out.len
        ));
    }
    Ok(())
}

/// A base read from its file where the decoder asks, not held in memory.
struct FileSource<'a> {
    file: &'a File,
    len: u64,
}

impl SourceProvider for FileSource<'_> {
    fn read_source(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, DecodeError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self
                .file
                .read_at(&mut buf[filled..], offset + filled as u64)
            {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(DecodeError::Io(e)),
            }
        }
        Ok(filled)
    }

    fn source_len(&self) -> Option<u64> {
        Some(self.len)
    }
}

/// What checking a delta on disk found.
pub enum Verdict {
    /// It decodes to its target.
    Good,
    /// It must not be published, for this reason.
    Wrong(String),
    /// It could not be decoded here; it is published as before, with this
    /// warning.
    Unchecked(String),
}

/// The VCDIFF header says a secondary compressor follows (`VCD_DECOMPRESS`
/// in the header indicator, after the 4 magic bytes): Debian's `xdelta3 -e`
/// compresses with lzma by default, which oxidelta does not decode.
fn has_secondary(delta: &Path) -> bool {
    let mut head = [0u8; 5];
    File::open(delta)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| head[..4] == [0xD6, 0xC3, 0xC4, 0x00] && head[4] & 1 == 1)
}

/// Checks a delta on disk against the files the catalog names.
fn check_on_disk(root: &Path, p: &Published, record: &Record) -> Verdict {
    let checked = (|| -> Result<Verdict, String> {
        let want = Sha256::from_hex(&record.target).map_err(|e| e.to_string())?;
        let target_size = std::fs::metadata(root.join(&p.target))
            .map_err(|e| format!("cannot stat {}: {e}", p.target))?
            .len();
        Ok(decodes(root, &p.path, &p.base, target_size, want))
    })();
    checked.unwrap_or_else(|why| Verdict::Wrong(format!("against {}, {why}", p.base)))
}

/// Whether the delta `delta` decodes, against the base root file `base`
/// (both relative to `root`), to `size` bytes with the sha256 `want`: with
/// oxidelta's decoder, or with `xdelta3 -d` (the daemons' decoder) for a
/// delta with secondary compression. Holds one window and its copies.
pub fn decodes(root: &Path, delta: &str, base: &str, size: u64, want: Sha256) -> Verdict {
    let delta_path = root.join(delta);
    let base_path = root.join(base);
    if has_secondary(&delta_path) {
        return with_xdelta3(&base_path, &delta_path, size, want);
    }
    let checked = (|| -> Result<(), String> {
        let open = |path: &Path| {
            File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
        };
        let base_file = open(&base_path)?;
        let len = base_file
            .metadata()
            .map_err(|e| format!("cannot stat {base}: {e}"))?
            .len();
        let mut source = FileSource {
            file: &base_file,
            len,
        };
        decodes_to(open(&delta_path)?, &mut source, size, want)
    })();
    match checked {
        Ok(()) => Verdict::Good,
        Err(why) => Verdict::Wrong(format!("against {base}, {why}")),
    }
}

/// Decodes with `xdelta3 -d`, the program the daemons run, for a delta
/// compressed in a way oxidelta does not decode.
fn with_xdelta3(base: &Path, delta: &Path, size: u64, want: Sha256) -> Verdict {
    let child = std::process::Command::new("xdelta3")
        .args(["-d", "-c", "-s"])
        .arg(base)
        .arg(delta)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            return Verdict::Unchecked(format!(
                "it uses secondary compression, which only xdelta3 decodes, and xdelta3 cannot be run ({e}); published unchecked"
            ));
        }
    };
    let mut out = HashSink {
        sha: sha2::Sha256::new(),
        len: 0,
    };
    let copied = child
        .stdout
        .take()
        .map(|mut stdout| std::io::copy(&mut stdout, &mut out));
    let status = child.wait_with_output();
    match (copied, status) {
        (Some(Ok(_)), Ok(o)) if o.status.success() => {
            let got = Sha256(out.sha.finalize().into());
            if out.len == size && got == want {
                Verdict::Good
            } else {
                Verdict::Wrong(format!(
                    "against {}, xdelta3 decodes it to {} bytes with sha256 {got}, not to the target's {size} bytes with sha256 {want}",
                    base.display(),
                    out.len
                ))
            }
        }
        (_, Ok(o)) => Verdict::Wrong(format!(
            "against {}, xdelta3 -d fails: {}",
            base.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        (_, Err(e)) => Verdict::Unchecked(format!(
            "xdelta3 -d could not be run ({e}); published unchecked"
        )),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A worker that panicked has failed the build; the state is a counter.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs `work` on every item, on up to as many threads as cores, largest
/// `cost` first, never starting one while the costs of those running
/// would pass `budget` (one runs alone whatever its cost). Results come
/// back in the order of `items`.
fn parallel<T: Sync, R: Send>(
    items: &[T],
    cost: impl Fn(&T) -> u64 + Sync,
    budget: u64,
    work: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(cost(&items[i])));
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(items.len());
    // (next index into `order`, cost of what runs now)
    let state = Mutex::new((0usize, 0u64));
    let freed = Condvar::new();
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let mut s = lock(&state);
                    let (i, c) = loop {
                        let Some(&i) = order.get(s.0) else { return };
                        let c = cost(&items[i]);
                        if s.1 == 0 || s.1.saturating_add(c) <= budget {
                            break (i, c);
                        }
                        s = freed
                            .wait(s)
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                    };
                    s.0 += 1;
                    s.1 += c;
                    drop(s);
                    let r = work(&items[i]);
                    lock(&results)[i] = Some(r);
                    lock(&state).1 -= c;
                    freed.notify_all();
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .into_iter()
        .map(|r| r.ok_or_else(|| anyhow!("a delta worker stopped early")))
        .collect::<Result<Vec<R>>>()
        .unwrap_or_else(|e| panic!("{e}: every item of the queue is run"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_keeps_order_and_stays_in_budget() {
        let items: Vec<u64> = vec![5, 1, 7, 3, 3, 9];
        let running = Mutex::new((0u64, 0u64));
        let out = parallel(
            &items,
            |c| *c,
            10,
            |c| {
                {
                    let mut r = lock(&running);
                    r.0 += c;
                    r.1 = r.1.max(r.0);
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
                lock(&running).0 -= c;
                c * 2
            },
        );
        assert_eq!(out, [10, 2, 14, 6, 6, 18]);
        let peak = lock(&running).1;
        assert!(peak <= 10, "ran {peak} at once with a budget of 10");
    }

    #[test]
    fn a_delta_decodes_only_to_its_target() {
        let base: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut target = base.clone();
        target[1000..1100].fill(7);
        let delta = vcdiff::encode(&base, &target);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("d.vcdiff");
        std::fs::write(&path, &delta).expect("write");
        let open = || File::open(&path).expect("open");
        let n = target.len() as u64;
        let file_of = |bytes: &[u8]| {
            let path = dir.path().join("base");
            std::fs::write(&path, bytes).expect("write");
            File::open(&path).expect("open")
        };
        let base_file = file_of(&base);
        let source = || FileSource {
            file: &base_file,
            len: base.len() as u64,
        };
        assert!(decodes_to(open(), &mut source(), n, Sha256::of(&target)).is_ok());
        let err = decodes_to(open(), &mut source(), n, Sha256::of(&base)).expect_err("other bytes");
        assert!(err.contains("not to the target"), "{err}");
        // Another base: the window checksums no longer match.
        let other = file_of(&vec![1u8; base.len()]);
        let mut src = FileSource {
            file: &other,
            len: base.len() as u64,
        };
        let err = decodes_to(open(), &mut src, n, Sha256::of(&target)).expect_err("other base");
        assert!(err.contains("does not decode"), "{err}");
    }
}
