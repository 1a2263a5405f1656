//! A VCDIFF encoder for image diffs: the format `xdelta3 -d` decodes, which
//! is what LXD and Incus run to patch a base image into the next version.
//!
//! The caller pushes the base once, in order, into an [`IndexBuilder`], then
//! pushes the target, in order, into an [`Encoder`], which reads the base
//! again only where it needs bytes, through [`Base`] (positioned reads of a
//! file, or a slice): the base is never held.
//!
//! How matches are found. The index hashes the first [`HASH_LEN`] bytes of
//! each block of the base (a block every `step` bytes, see
//! [`Index::step_for`]) into a table of one 8-byte slot per block. The
//! encoder slides the same hash over the target one byte at a time; where it
//! hits, it compares the bytes themselves and extends the match backwards
//! and forwards as far as they agree. Any run the two share of at least
//! `HASH_LEN + step - 1` bytes holds a whole hashed block, so it is found
//! (unless every one of its blocks lost its slot to another block of the
//! same hash). A squashfs rebuilt with a few files changed is mostly that:
//! long runs of the old image, shifted by what changed before them, and new
//! compressed blocks that match nothing. The encoder also copies from the
//! part of the current window it has already passed (a hashed position
//! every 32 bytes of it), and writes runs of one byte as such.
//!
//! Memory, bounded before the first byte: the index holds 8 bytes per
//! block ([`Index::memory`]: a quarter of the base up to 1 GiB of base,
//! 256 MiB at most); the encoder holds one target window, a table of it of
//! a quarter of its size, one read buffer of at most 1 MiB, and the
//! instructions of one window ([`Encoder::memory`]). What it produces per
//! window (at most the window and its instructions) is the caller's to
//! write and clear.
//!
//! The output: target windows of [`WINDOW`] bytes (the last one shorter),
//! each naming the span of the base its copies read; the default code table
//! and address caches; xdelta3's Adler-32 checksum of each window's target;
//! no secondary compression (the new bytes of a squashfs delta are
//! compressed blocks already).
//!
//! ```
//! use ssgen_core::vcdiff;
//!
//! let base: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
//! let mut target = base.clone();
//! target.splice(5000..5000, b"new bytes".iter().copied());
//! let delta = vcdiff::encode(&base, &target);
//! assert!(delta.len() < 100);
//! ```

use std::convert::Infallible;

/// The bytes each indexed position hashes, and the width of the hash the
/// encoder slides over the target.
pub const HASH_LEN: usize = 32;
/// The default target window: xdelta3's own.
pub const WINDOW: usize = 8 << 20;
/// The largest target window xdelta3 decodes.
pub const MAX_WINDOW: usize = 16 << 20;

/// The finest step of the base index.
const MIN_STEP: u64 = HASH_LEN as u64;
/// The most blocks the index holds: 256 MiB of slots. A larger base gets a
/// coarser step, so only its shortest shared runs can be missed.
const MAX_BLOCKS: u64 = 1 << 25;
/// The step of the current window's table.
const TARGET_STEP: usize = 32;
/// The shortest copy worth an instruction and an address.
const MIN_COPY: usize = 16;
/// The shortest run of one byte written as a run.
const MIN_RUN: usize = 16;
/// The first read of the base at a candidate, and the largest: reads double
/// while a match goes on.
const FIRST_READ: usize = 4 << 10;
const MAX_READ: usize = 1 << 20;
/// The widest span of the base one window's copies may read: xdelta3 keeps
/// the span's length and the addresses in it in 32 bits.
const MAX_SEGMENT: u64 = 1 << 31;

/// Where the encoder reads the base: the caller's file, or bytes in memory.
pub trait Base {
    /// Why a read failed.
    type Error;
    /// Fills `buf` with the base's bytes from `offset` on. The encoder
    /// asks only for bytes within the length it indexed.
    ///
    /// # Errors
    /// When the bytes cannot be read (or are no longer there).
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Self::Error>;
}

impl Base for &[u8] {
    type Error = Infallible;

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Infallible> {
        let at = usize::try_from(offset).unwrap_or(usize::MAX);
        buf.copy_from_slice(&self[at..at + buf.len()]);
        Ok(())
    }
}

/// `B^(HASH_LEN - 1 - i)`, the weight of the `i`-th byte of a hashed run.
const POWERS: [u64; HASH_LEN] = {
    let mut p = [0u64; HASH_LEN];
    let mut x = 1u64;
    let mut i = HASH_LEN;
    while i > 0 {
        i -= 1;
        p[i] = x;
        x = x.wrapping_mul(RADIX);
    }
    p
};
const RADIX: u64 = 0x9E37_79B9_7F4A_7C15;

/// A polynomial hash of `HASH_LEN` bytes: the index computes it at each
/// block, the encoder rolls it a byte at a time.
fn hash(bytes: &[u8]) -> u64 {
    bytes.iter().zip(POWERS).fold(0u64, |h, (&b, p)| {
        h.wrapping_add(u64::from(b).wrapping_mul(p))
    })
}

/// The hash of the run one byte further on: `out` leaves it, `next` joins.
fn roll(h: u64, out: u8, next: u8) -> u64 {
    h.wrapping_sub(u64::from(out).wrapping_mul(POWERS[0]))
        .wrapping_mul(RADIX)
        .wrapping_add(u64::from(next))
}

/// Positions by hash: one 8-byte slot each, the first position of a hash
/// kept. A slot holds 32 more bits of the hash, so that a hit is nearly
/// always a real one before any byte is read.
struct Table {
    slots: Vec<u64>,
}

impl Table {
    fn new(slots: usize) -> Self {
        Self {
            slots: vec![0; slots.max(1)],
        }
    }

    fn place(&self, h: u64) -> (usize, u32) {
        let x = (h ^ (h >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let x = x ^ (x >> 32);
        let len = self.slots.len() as u128;
        // The high bits choose the slot, the low ones check it.
        let slot = ((u128::from(x) * len) >> 64) as usize;
        (slot, x as u32)
    }

    fn insert(&mut self, h: u64, position: u32) {
        let (slot, check) = self.place(h);
        if self.slots[slot] == 0 && position < u32::MAX {
            self.slots[slot] = (u64::from(check) << 32) | u64::from(position + 1);
        }
    }

    fn get(&self, h: u64) -> Option<u32> {
        let (slot, check) = self.place(h);
        let e = self.slots[slot];
        let position = e as u32;
        (position != 0 && (e >> 32) as u32 == check).then(|| position - 1)
    }

    fn clear(&mut self) {
        self.slots.fill(0);
    }
}

/// An index of a base, for [`Encoder`].
pub struct Index {
    step: u64,
    len: u64,
    table: Table,
}

impl Index {
    /// The distance between indexed positions for a base of `len` bytes:
    /// [`HASH_LEN`], doubled while the index would pass its size bound.
    #[must_use]
    pub fn step_for(len: u64) -> u64 {
        let mut step = MIN_STEP;
        while len.div_ceil(step) > MAX_BLOCKS {
            step *= 2;
        }
        step
    }

    fn slots_for(len: u64) -> usize {
        let blocks = len.div_ceil(Self::step_for(len)).max(1);
        usize::try_from(blocks).unwrap_or(usize::MAX)
    }

    /// The bytes the index of a base of `len` bytes holds: 8 per block.
    #[must_use]
    pub fn memory(len: u64) -> u64 {
        Self::slots_for(len) as u64 * 8
    }

    /// The length of the base indexed.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the base indexed is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Builds an [`Index`] from the base's bytes, pushed in order.
pub struct IndexBuilder {
    step: u64,
    table: Table,
    pos: u64,
    /// The first bytes of a block whose hashed bytes straddle two pushes.
    head: [u8; HASH_LEN],
}

impl IndexBuilder {
    /// An index for a base of about `len` bytes (its memory is sized by
    /// it; the index covers whatever is pushed).
    #[must_use]
    pub fn new(len: u64) -> Self {
        Self {
            step: Index::step_for(len),
            table: Table::new(Index::slots_for(len)),
            pos: 0,
            head: [0; HASH_LEN],
        }
    }

    /// Indexes the next bytes of the base.
    pub fn push(&mut self, mut bytes: &[u8]) {
        let len = HASH_LEN as u64;
        while !bytes.is_empty() {
            let into = self.pos % self.step;
            let take = if into < len {
                let into = into as usize;
                let take = (HASH_LEN - into).min(bytes.len());
                if into == 0 && take == HASH_LEN {
                    self.add(hash(&bytes[..HASH_LEN]));
                } else {
                    self.head[into..into + take].copy_from_slice(&bytes[..take]);
                    if into + take == HASH_LEN {
                        self.add(hash(&self.head));
                    }
                }
                take
            } else {
                usize::try_from(self.step - into)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len())
            };
            bytes = &bytes[take..];
            self.pos += take as u64;
        }
    }

    fn add(&mut self, h: u64) {
        if let Ok(block) = u32::try_from(self.pos / self.step) {
            self.table.insert(h, block);
        }
    }

    /// The index of every byte pushed.
    #[must_use]
    pub fn finish(self) -> Index {
        Index {
            step: self.step,
            len: self.pos,
            table: self.table,
        }
    }
}

/// What an encoding made of its target, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Target windows written.
    pub windows: u64,
    /// Bytes copied from the base.
    pub from_base: u64,
    /// Bytes copied from earlier in their window.
    pub from_target: u64,
    /// Bytes written out as runs of one byte.
    pub runs: u64,
    /// Bytes written out as they are.
    pub added: u64,
}

/// One instruction of a window: positions and lengths in it are below
/// [`MAX_WINDOW`], so 32 bits hold them (16 bytes an instruction).
#[derive(Clone, Copy, Debug)]
enum Inst {
    /// The window's bytes at `at..at + len`, as they are.
    Add {
        at: u32,
        len: u32,
    },
    Run {
        byte: u8,
        len: u32,
    },
    FromBase {
        addr: u64,
        len: u32,
    },
    /// The window's own bytes from `at` (which may overlap what it makes).
    FromTarget {
        at: u32,
        len: u32,
    },
}

/// A position or length in a window, which is at most [`MAX_WINDOW`].
fn small(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A match found at a target position: `back` bytes before it and `ahead`
/// from it, reading from the base at `from` (or the window at `at`).
#[derive(Clone, Copy)]
struct Found {
    back: usize,
    ahead: usize,
    source: Source,
}

#[derive(Clone, Copy)]
enum Source {
    Base(u64),
    Target(usize),
}

impl Found {
    fn len(&self) -> usize {
        self.back + self.ahead
    }
}

/// One buffer of base bytes, refilled by positioned reads.
struct Reader {
    buf: Vec<u8>,
    start: u64,
}

impl Reader {
    fn get<B: Base>(&mut self, base: &mut B, offset: u64, len: usize) -> Result<&[u8], B::Error> {
        let end = offset + len as u64;
        let have = self.start + self.buf.len() as u64;
        if offset < self.start || end > have {
            self.buf.resize(len, 0);
            base.read_at(offset, &mut self.buf)?;
            self.start = offset;
        }
        let at = (offset - self.start) as usize;
        Ok(&self.buf[at..at + len])
    }
}

fn word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(bytes);
    u64::from_le_bytes(w)
}

/// How many bytes `a` and `b` share from their start.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut i = 0;
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let d = word(x) ^ word(y);
        if d != 0 {
            return i + (d.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

/// How many bytes `a` and `b` share at their end.
fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (a, b) = (&a[a.len() - n..], &b[b.len() - n..]);
    let mut i = 0;
    for (x, y) in a.rchunks_exact(8).zip(b.rchunks_exact(8)) {
        let d = word(x) ^ word(y);
        if d != 0 {
            return i + (d.leading_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a[n - 1 - i] == b[n - 1 - i] {
        i += 1;
    }
    i
}

/// The address caches of the format, as the decoder keeps them: the last
/// four addresses, and the last address seen for each of 768 residues.
struct Caches {
    near: [u64; 4],
    next: usize,
    same: [u64; 768],
}

impl Caches {
    fn new() -> Self {
        Self {
            near: [0; 4],
            next: 0,
            same: [0; 768],
        }
    }

    fn reset(&mut self) {
        *self = Self::new();
    }

    /// Writes `addr` in its shortest form relative to `here` (the position
    /// being made, counted from the source segment's start) and returns
    /// the mode that says which form.
    fn encode(&mut self, addr: u64, here: u64, out: &mut Vec<u8>) -> u8 {
        let same = (addr % 768) as usize;
        let mode = if self.same[same] == addr {
            out.push((same % 256) as u8);
            6 + (same / 256) as u8
        } else {
            // Mode 0: the address itself; 1: back from here; 2-5: on from
            // one of the near addresses.
            let mut best = (0u8, addr);
            if here - addr < best.1 {
                best = (1, here - addr);
            }
            for (i, &near) in self.near.iter().enumerate() {
                if addr >= near && addr - near < best.1 {
                    best = (2 + i as u8, addr - near);
                }
            }
            varint(best.1, out);
            best.0
        };
        self.near[self.next] = addr;
        self.next = (self.next + 1) % self.near.len();
        self.same[same] = addr;
        mode
    }
}

/// The format's integers: base 128, most significant group first.
fn varint(v: u64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 10];
    let mut i = buf.len() - 1;
    let mut v = v;
    buf[i] = (v & 0x7f) as u8;
    v >>= 7;
    while v > 0 {
        i -= 1;
        buf[i] = (v & 0x7f) as u8 | 0x80;
        v >>= 7;
    }
    out.extend_from_slice(&buf[i..]);
}

fn varint_len(v: u64) -> usize {
    let bits = 64 - v.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

/// Adler-32, as xdelta3 checks each window's target with.
fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65521;
    // The most bytes before `b` could pass 32 bits.
    const CHUNK: usize = 5552;
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(CHUNK) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

const MAGIC: [u8; 4] = [0xD6, 0xC3, 0xC4, 0x00];
const VCD_SOURCE: u8 = 0x01;
const VCD_ADLER32: u8 = 0x04;

/// Encodes a target, pushed in order, against an indexed base.
pub struct Encoder<'i> {
    index: &'i Index,
    window_size: usize,
    window: Vec<u8>,
    targets: Table,
    reader: Reader,
    insts: Vec<Inst>,
    inst_buf: Vec<u8>,
    addr_buf: Vec<u8>,
    caches: Caches,
    started: bool,
    /// Target bytes in the windows already written.
    done: u64,
    /// Where the last copy from the base ended: in the whole target, and
    /// in the base. The next match most likely goes on from there.
    last: Option<(u64, u64)>,
    stats: Stats,
}

impl<'i> Encoder<'i> {
    /// An encoder with [`WINDOW`]-byte windows.
    #[must_use]
    pub fn new(index: &'i Index) -> Self {
        Self::with_window(index, WINDOW)
    }

    /// An encoder with windows of `window_size` bytes (1 to
    /// [`MAX_WINDOW`]; clamped to that).
    #[must_use]
    pub fn with_window(index: &'i Index, window_size: usize) -> Self {
        let window_size = window_size.clamp(1, MAX_WINDOW);
        Self {
            index,
            window_size,
            window: Vec::with_capacity(window_size),
            targets: Table::new(window_size / TARGET_STEP),
            reader: Reader {
                buf: Vec::new(),
                start: 0,
            },
            insts: Vec::new(),
            inst_buf: Vec::new(),
            addr_buf: Vec::new(),
            caches: Caches::new(),
            started: false,
            done: 0,
            last: None,
            stats: Stats::default(),
        }
    }

    /// The bytes an encoder with windows of `window_size` bytes holds, at
    /// most: the window, its table, the read buffer, and a window's
    /// instructions in the worst case (the shortest copy, 16 bytes, and an
    /// add of one, over and over: 16 bytes each, 11 encoded; a squashfs
    /// window has a few thousand).
    #[must_use]
    pub fn memory(window_size: usize) -> u64 {
        let w = window_size.clamp(1, MAX_WINDOW) as u64;
        let pairs = w / (MIN_COPY as u64 + 1) + 1;
        w + (w / TARGET_STEP as u64).max(1) * 8 + MAX_READ as u64 + pairs * (2 * 16 + 11)
    }

    /// Encodes the next bytes of the target, appending to `out` each
    /// window they complete.
    ///
    /// # Errors
    /// When the base cannot be read.
    pub fn push<B: Base>(
        &mut self,
        mut bytes: &[u8],
        base: &mut B,
        out: &mut Vec<u8>,
    ) -> Result<(), B::Error> {
        self.start(out);
        while !bytes.is_empty() {
            let take = (self.window_size - self.window.len()).min(bytes.len());
            self.window.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.window.len() == self.window_size {
                self.flush(base, out)?;
            }
        }
        Ok(())
    }

    /// Encodes what is left of the target, appending it to `out`. An empty
    /// target gets one empty window: xdelta3 refuses a delta of none.
    ///
    /// # Errors
    /// When the base cannot be read.
    pub fn finish<B: Base>(mut self, base: &mut B, out: &mut Vec<u8>) -> Result<Stats, B::Error> {
        self.start(out);
        if !self.window.is_empty() || self.stats.windows == 0 {
            self.flush(base, out)?;
        }
        Ok(self.stats)
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            out.extend_from_slice(&MAGIC);
            // No secondary compression, the default code table, no
            // application header.
            out.push(0);
            self.started = true;
        }
    }

    fn flush<B: Base>(&mut self, base: &mut B, out: &mut Vec<u8>) -> Result<(), B::Error> {
        self.find(base)?;
        self.write(out);
        self.done += self.window.len() as u64;
        self.window.clear();
        self.targets.clear();
        self.stats.windows += 1;
        Ok(())
    }

    /// Where the last copy from the base would have the target byte at
    /// `at` (in the whole target), if it went on.
    fn going_on(&self, at: u64) -> Option<u64> {
        let (t_end, b_end) = self.last?;
        let addr = b_end.checked_add(at.checked_sub(t_end)?)?;
        (addr < self.index.len).then_some(addr)
    }

    /// Fills `insts` with the window's instructions.
    fn find<B: Base>(&mut self, base: &mut B) -> Result<(), B::Error> {
        self.insts.clear();
        let n = self.window.len();
        let mut span = Span::default();
        // The end of the last instruction: nothing before it may change.
        let mut lo = 0;
        let mut pos = 0;
        if let Some(addr) = self.going_on(self.done) {
            let found = self.try_base(base, 0, 0, addr, &span)?;
            if let Some(f) = found {
                pos = self.take(f, lo, pos, &mut span);
                lo = pos;
            }
        }
        let mut rolled = None;
        while pos + HASH_LEN <= n {
            let h = rolled.unwrap_or_else(|| hash(&self.window[pos..pos + HASH_LEN]));
            let mut best: Option<Found> = None;
            if let Some(block) = self.index.table.get(h) {
                let addr = u64::from(block) * self.index.step;
                best = self.try_base(base, lo, pos, addr, &span)?;
                // The same bytes may be in the base twice: prefer where the
                // last copy goes on, when that matches longer.
                if best.is_some()
                    && let Some(next) = self.going_on(self.done + pos as u64)
                    && next != addr
                    && let Some(f) = self.try_base(base, lo, pos, next, &span)?
                    && best.is_none_or(|b| f.len() > b.len())
                {
                    best = Some(f);
                }
            }
            if let Some(at) = self.targets.get(h).map(|at| at as usize)
                && at < pos
                && let Some(f) = self.try_target(lo, pos, at)
                && best.is_none_or(|b| f.len() > b.len())
            {
                best = Some(f);
            }
            // A run of one byte is left to be written as a run (not
            // copied from itself), unless a copy goes further; the
            // positions inside it would all hash the same, so the search
            // goes on where it ends.
            let w = &self.window;
            let byte = w[pos];
            let run = w[pos + HASH_LEN - 1] == byte
                && w[pos + 1] == byte
                && w[pos..pos + HASH_LEN].iter().all(|&b| b == byte);
            if pos % TARGET_STEP == 0 && !run {
                // Positions below 2^32: a window is at most 16 MiB.
                self.targets.insert(h, pos as u32);
            }
            let run_len = if run {
                w[pos..].iter().take_while(|&&b| b == byte).count()
            } else {
                0
            };
            match best {
                Some(f) if f.ahead >= run_len => {
                    pos = self.take(f, lo, pos, &mut span);
                    lo = pos;
                    rolled = None;
                }
                _ if run => {
                    pos += run_len - HASH_LEN + 1;
                    rolled = None;
                }
                _ => {
                    rolled = (pos + HASH_LEN < n)
                        .then(|| roll(h, self.window[pos], self.window[pos + HASH_LEN]));
                    pos += 1;
                }
            }
        }
        self.add(lo, n);
        Ok(())
    }

    /// Writes out the bytes before `f` and the copy `f`; returns where the
    /// copy ends.
    fn take(&mut self, f: Found, lo: usize, pos: usize, span: &mut Span) -> usize {
        let start = pos - f.back;
        self.add(lo, start);
        let len = f.len();
        match f.source {
            Source::Base(addr) => {
                let from = addr - f.back as u64;
                span.include(from, from + len as u64);
                self.insts.push(Inst::FromBase {
                    addr: from,
                    len: small(len),
                });
                self.stats.from_base += len as u64;
                let end = self.done + (start + len) as u64;
                self.last = Some((end, from + len as u64));
            }
            Source::Target(at) => {
                self.insts.push(Inst::FromTarget {
                    at: small(at - f.back),
                    len: small(len),
                });
                self.stats.from_target += len as u64;
            }
        }
        start + len
    }

    /// The window's bytes `from..to` as they are, with long runs of one
    /// byte split out.
    fn add(&mut self, from: usize, to: usize) {
        let w = &self.window;
        let mut start = from;
        let mut i = from;
        while i < to {
            let byte = w[i];
            let mut j = i + 1;
            while j < to && w[j] == byte {
                j += 1;
            }
            if j - i >= MIN_RUN {
                if i > start {
                    self.insts.push(Inst::Add {
                        at: small(start),
                        len: small(i - start),
                    });
                    self.stats.added += (i - start) as u64;
                }
                self.insts.push(Inst::Run {
                    byte,
                    len: small(j - i),
                });
                self.stats.runs += (j - i) as u64;
                start = j;
            }
            i = j;
        }
        if start < to {
            self.insts.push(Inst::Add {
                at: small(start),
                len: small(to - start),
            });
            self.stats.added += (to - start) as u64;
        }
    }

    /// The match between the window at `pos` and the base at `addr`, if
    /// it is long enough and the window may read there.
    fn try_base<B: Base>(
        &mut self,
        base: &mut B,
        lo: usize,
        pos: usize,
        addr: u64,
        span: &Span,
    ) -> Result<Option<Found>, B::Error> {
        let base_len = self.index.len;
        let w = &self.window;
        // One read for the usual case: a few bytes back, a page ahead.
        let back_room = (pos - lo).min(usize::try_from(addr).unwrap_or(usize::MAX));
        let first_back = back_room.min(HASH_LEN * 4);
        let first_ahead =
            (w.len() - pos).min(usize::try_from(base_len - addr).unwrap_or(usize::MAX));
        let first_ahead = first_ahead.min(FIRST_READ);
        self.reader
            .get(base, addr - first_back as u64, first_back + first_ahead)?;

        let mut ahead = 0;
        let mut chunk = FIRST_READ;
        loop {
            let at = addr + ahead as u64;
            let want = (w.len() - pos - ahead)
                .min(usize::try_from(base_len - at).unwrap_or(usize::MAX))
                .min(chunk);
            if want == 0 {
                break;
            }
            let bytes = self.reader.get(base, at, want)?;
            let same = common_prefix(&w[pos + ahead..pos + ahead + want], bytes);
            ahead += same;
            if same < want {
                break;
            }
            chunk = (chunk * 2).min(MAX_READ);
        }
        if ahead == 0 {
            return Ok(None);
        }
        let mut back = 0;
        let mut chunk = first_back.max(1);
        loop {
            let want = (back_room - back).min(chunk);
            if want == 0 {
                break;
            }
            let at = addr - (back + want) as u64;
            let bytes = self.reader.get(base, at, want)?;
            let same = common_suffix(&w[pos - back - want..pos - back], bytes);
            back += same;
            if same < want {
                break;
            }
            chunk = (chunk * 2).min(MAX_READ);
        }
        let found = Found {
            back,
            ahead,
            source: Source::Base(addr),
        };
        let from = addr - back as u64;
        Ok(
            (found.len() >= MIN_COPY && span.allows(from, from + found.len() as u64))
                .then_some(found),
        )
    }

    /// The match between the window at `pos` and its own bytes at `at`
    /// (before `pos`).
    fn try_target(&self, lo: usize, pos: usize, at: usize) -> Option<Found> {
        let w = &self.window;
        let ahead = common_prefix(&w[at..], &w[pos..]);
        let room = (pos - lo).min(at);
        let back = common_suffix(&w[at - room..at], &w[pos - room..pos]);
        let found = Found {
            back,
            ahead,
            source: Source::Target(at),
        };
        (ahead > 0 && found.len() >= MIN_COPY).then_some(found)
    }

    /// Appends the window, encoded, to `out`.
    fn write(&mut self, out: &mut Vec<u8>) {
        let mut seg = Span::default();
        for inst in &self.insts {
            if let Inst::FromBase { addr, len } = *inst {
                seg.include(addr, addr + u64::from(len));
            }
        }
        let (seg_pos, seg_len) = seg.bounds();
        self.caches.reset();
        self.inst_buf.clear();
        self.addr_buf.clear();
        let mut here = seg_len;
        let mut data_len = 0u64;
        for inst in &self.insts {
            match *inst {
                Inst::Add { len, .. } => {
                    if (1..=17).contains(&len) {
                        self.inst_buf.push(1 + len as u8);
                    } else {
                        self.inst_buf.push(1);
                        varint(u64::from(len), &mut self.inst_buf);
                    }
                    data_len += u64::from(len);
                    here += u64::from(len);
                }
                Inst::Run { len, .. } => {
                    self.inst_buf.push(0);
                    varint(u64::from(len), &mut self.inst_buf);
                    data_len += 1;
                    here += u64::from(len);
                }
                Inst::FromBase { addr, len } => {
                    let mode = self.caches.encode(addr - seg_pos, here, &mut self.addr_buf);
                    copy_code(mode, len, &mut self.inst_buf);
                    here += u64::from(len);
                }
                Inst::FromTarget { at, len } => {
                    let addr = seg_len + u64::from(at);
                    let mode = self.caches.encode(addr, here, &mut self.addr_buf);
                    copy_code(mode, len, &mut self.inst_buf);
                    here += u64::from(len);
                }
            }
        }
        let target_len = self.window.len() as u64;
        let inst_len = self.inst_buf.len() as u64;
        let addr_len = self.addr_buf.len() as u64;
        let encoding_len = varint_len(target_len)
            + 1
            + varint_len(data_len)
            + varint_len(inst_len)
            + varint_len(addr_len)
            + 4
            + (data_len + inst_len + addr_len) as usize;

        let mut indicator = VCD_ADLER32;
        if seg_len > 0 {
            indicator |= VCD_SOURCE;
        }
        out.push(indicator);
        if seg_len > 0 {
            varint(seg_len, out);
            varint(seg_pos, out);
        }
        varint(encoding_len as u64, out);
        varint(target_len, out);
        // The delta indicator: no section is compressed.
        out.push(0);
        varint(data_len, out);
        varint(inst_len, out);
        varint(addr_len, out);
        out.extend_from_slice(&adler32(&self.window).to_be_bytes());
        for inst in &self.insts {
            match *inst {
                Inst::Add { at, len } => {
                    let (at, len) = (at as usize, len as usize);
                    out.extend_from_slice(&self.window[at..at + len]);
                }
                Inst::Run { byte, .. } => out.push(byte),
                Inst::FromBase { .. } | Inst::FromTarget { .. } => {}
            }
        }
        out.extend_from_slice(&self.inst_buf);
        out.extend_from_slice(&self.addr_buf);
    }
}

/// A copy instruction of `len` bytes whose address is in `mode`. Sizes 4
/// to 18 are in the code itself; copies are never shorter than
/// [`MIN_COPY`], so the table's paired codes (copies of 4 to 6 bytes
/// beside a short add) never apply.
fn copy_code(mode: u8, len: u32, inst: &mut Vec<u8>) {
    let first = 19 + 16 * mode;
    if (4..=18).contains(&len) {
        inst.push(first + (len - 3) as u8);
    } else {
        inst.push(first);
        varint(u64::from(len), inst);
    }
}

/// The part of the base a window's copies read.
#[derive(Default)]
struct Span {
    range: Option<(u64, u64)>,
}

impl Span {
    fn include(&mut self, from: u64, to: u64) {
        self.range = Some(match self.range {
            Some((lo, hi)) => (lo.min(from), hi.max(to)),
            None => (from, to),
        });
    }

    fn allows(&self, from: u64, to: u64) -> bool {
        match self.range {
            Some((lo, hi)) => hi.max(to) - lo.min(from) <= MAX_SEGMENT,
            None => to - from <= MAX_SEGMENT,
        }
    }

    /// Where it starts, and its length (0 when nothing is read).
    fn bounds(&self) -> (u64, u64) {
        self.range.map_or((0, 0), |(lo, hi)| (lo, hi - lo))
    }
}

/// The delta from `base` to `target`, both in memory.
#[must_use]
pub fn encode(base: &[u8], target: &[u8]) -> Vec<u8> {
    encode_with_window(base, target, WINDOW).0
}

/// [`encode`] with windows of `window` bytes, and what it made.
#[must_use]
pub fn encode_with_window(base: &[u8], target: &[u8], window: usize) -> (Vec<u8>, Stats) {
    let mut builder = IndexBuilder::new(base.len() as u64);
    builder.push(base);
    let index = builder.finish();
    let mut encoder = Encoder::with_window(&index, window);
    let mut out = Vec::new();
    let mut source = base;
    let Ok(()) = encoder.push(target, &mut source, &mut out);
    let Ok(stats) = encoder.finish(&mut source, &mut out);
    (out, stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rolling_hash_is_the_hash_of_the_run() {
        let bytes: Vec<u8> = (0..200u32).map(|i| (i * 31 % 256) as u8).collect();
        let mut h = hash(&bytes[..HASH_LEN]);
        for i in 1..bytes.len() - HASH_LEN {
            h = roll(h, bytes[i - 1], bytes[i + HASH_LEN - 1]);
            assert_eq!(h, hash(&bytes[i..i + HASH_LEN]), "at {i}");
        }
    }

    #[test]
    fn integers_are_base_128_most_significant_first() {
        for (v, want) in [
            (0u64, vec![0u8]),
            (127, vec![0x7f]),
            (128, vec![0x81, 0x00]),
            (123_456_789, vec![0xBA, 0xEF, 0x9A, 0x15]),
        ] {
            let mut out = Vec::new();
            varint(v, &mut out);
            assert_eq!(out, want, "{v}");
            assert_eq!(varint_len(v), want.len(), "{v}");
        }
    }

    #[test]
    fn adler32_of_known_text() {
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        assert_eq!(adler32(b""), 1);
        // Past one chunk, where the sums are reduced.
        let long = vec![0xffu8; 100_000];
        let (mut a, mut b) = (1u64, 0u64);
        for &x in &long {
            a = (a + u64::from(x)) % 65521;
            b = (b + a) % 65521;
        }
        assert_eq!(adler32(&long), ((b << 16) | a) as u32);
    }

    #[test]
    fn the_caches_pick_the_shortest_form() {
        let mut c = Caches::new();
        let mut out = Vec::new();
        // Nothing cached: the address itself (mode 0), or back from here.
        assert_eq!(c.encode(1000, 100_000, &mut out), 0);
        assert_eq!(out, [0x87, 0x68]);
        out.clear();
        assert_eq!(c.encode(99_990, 100_000, &mut out), 1);
        assert_eq!(out, [10]);
        out.clear();
        // On from the first address (near slot 0: mode 2).
        assert_eq!(c.encode(1010, 100_000, &mut out), 2);
        assert_eq!(out, [10]);
        out.clear();
        // The same address again: mode 6 + (1000 % 768) / 256, and the
        // residue's low byte.
        assert_eq!(c.encode(1000, 100_000, &mut out), 6);
        assert_eq!(out, [(1000 % 768) as u8]);
    }

    #[test]
    fn the_memory_bound_counts_what_is_held() {
        // Encoder::memory counts 16 bytes an instruction.
        assert_eq!(std::mem::size_of::<Inst>(), 16);
        let w = WINDOW as u64;
        let bound = Encoder::memory(WINDOW);
        assert!(bound > w + w / 4 + MAX_READ as u64);
        assert!(bound < 4 * w, "{bound}");
    }

    #[test]
    fn the_index_steps_grow_with_the_base() {
        assert_eq!(Index::step_for(0), 32);
        assert_eq!(Index::step_for(1 << 30), 32);
        assert_eq!(Index::step_for((1 << 30) + 1), 64);
        assert_eq!(Index::step_for(5 << 30), 256);
        assert_eq!(Index::memory(80 << 20), (80 << 20) / 32 * 8);
        assert!(Index::memory(100 << 30) <= 256 << 20);
    }

    #[test]
    fn pushes_of_any_size_index_the_same() {
        let base: Vec<u8> = (0..10_000u64)
            .map(|i| (i.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8)
            .collect();
        let mut whole = IndexBuilder::new(base.len() as u64);
        whole.push(&base);
        let whole = whole.finish();
        for size in [1, 7, 31, 33, 1000] {
            let mut parts = IndexBuilder::new(base.len() as u64);
            for chunk in base.chunks(size) {
                parts.push(chunk);
            }
            let parts = parts.finish();
            assert_eq!(parts.len(), whole.len());
            assert!(parts.table.slots == whole.table.slots, "pushes of {size}");
        }
        assert!(whole.table.slots.iter().filter(|&&s| s != 0).count() > 150);
    }

    /// The bytes of a window written by hand from the format's rules: one
    /// copy of the base's 92 bytes from 8, then 3 bytes added.
    #[test]
    fn a_window_is_laid_out_as_the_format_says() {
        let base: Vec<u8> = (0..128u8).collect();
        let mut target = base[8..100].to_vec();
        target.extend_from_slice(b"xyz");
        let (delta, stats) = encode_with_window(&base, &target, WINDOW);
        let mut want = vec![0xD6, 0xC3, 0xC4, 0x00, 0x00];
        want.extend_from_slice(&[
            VCD_SOURCE | VCD_ADLER32,
            92, // the source segment's length
            8,  // and where it starts in the base
            16, // the length of the rest of the window
            95, // the target window's length
            0,  // nothing compressed
            3,  // data: the added bytes
            3,  // instructions: copy, its size, add
            1,  // addresses
        ]);
        want.extend_from_slice(&adler32(&target).to_be_bytes());
        want.extend_from_slice(b"xyz");
        // A copy in mode 6 (its address, 0, is in the zeroed "same"
        // cache), its size after the code; an add of 3.
        want.extend_from_slice(&[19 + 16 * 6, 92, 1 + 3]);
        // The copy's address: slot 0 of the first "same" block.
        want.push(0);
        assert_eq!(delta, want);
        assert_eq!(
            stats,
            Stats {
                windows: 1,
                from_base: 92,
                added: 3,
                ..Stats::default()
            }
        );
    }

    #[test]
    fn long_matches_anywhere_in_the_base_are_found() {
        // 4 MiB of noise; the target is its second half, a new MiB, then
        // its first half, so every match is far from where it was.
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut noise = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        };
        let base = noise(4 << 20);
        let fresh = noise(1 << 20);
        let mut target = base[2 << 20..].to_vec();
        target.extend_from_slice(&fresh);
        target.extend_from_slice(&base[..2 << 20]);
        let (delta, stats) = encode_with_window(&base, &target, 1 << 20);
        assert_eq!(stats.from_base, 4 << 20);
        assert_eq!(stats.added, 1 << 20);
        assert_eq!(stats.windows, 5);
        assert!(delta.len() < (1 << 20) + 200, "{}", delta.len());
    }

    #[test]
    fn runs_and_repeats_within_the_window_are_not_added() {
        let base = vec![1u8; 10];
        let mut target = vec![0u8; 5000];
        let word: Vec<u8> = (1..=100u8).map(|i| i.wrapping_mul(37)).collect();
        target.extend_from_slice(&word);
        target.extend_from_slice(&word);
        let (_, stats) = encode_with_window(&base, &target, WINDOW);
        assert_eq!(stats.runs, 5000);
        assert_eq!(stats.added, 100);
        assert_eq!(stats.from_target, 100);
    }
}
