//! A small summary written beside each lake file (`.NAME.parquet.sketch`) of the text search
//! looks at (decoded JSON, else payload text): every trigram it contains (an exact bitmap) and
//! a Bloom filter of its words. A search for a rare value or phrase then reads only the files
//! whose sketch allows a match, instead of scanning every payload in the lake.
//!
//! The summary may only ever say "maybe": a sketch that answers "no" for a file holding a
//! match would hide events, so the folding below mirrors how the queries compare text
//! (RE2's case-insensitive matching for free text, substring tests for equality guards), and a
//! missing or unreadable sketch means "maybe".
//!
//! Each block of `BLOCK_ROWS` rows (one Parquet row group) also keeps its own trigram bitmap,
//! so a rare phrase found in every file still reads only the row groups that may hold it.
//!
//! Folding: ASCII letters are lowercased, KELVIN SIGN and LATIN SMALL LETTER LONG S become `k`
//! and `s` (the only non-ASCII characters RE2 matches to ASCII letters case-insensitively),
//! ASCII digits stay, and every other byte is a separator. Words are runs of letters and
//! digits, hashed on their first `WORD_MAX` bytes. Trigrams are taken over the folded text
//! with each run of separators collapsed to one, and the text's ends count as separators.

use sluice_filter::Needs;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"SLSKTCH2";
/// Sketches without block bitmaps (Sluice before 2026-11-23): still read, every block allowed.
const MAGIC_V1: &[u8; 8] = b"SLSKTCH1";
/// Rows summarised by each block bitmap. The lake writer cuts row groups of this many rows, so
/// a block its bitmap rules out is a row group DuckDB never reads.
pub(crate) const BLOCK_ROWS: usize = 10_000;
/// Letters, digits and one separator class.
const CLASSES: usize = 37;
const TRIGRAMS: usize = CLASSES * CLASSES * CLASSES;
const TRIGRAM_BYTES: usize = TRIGRAMS.div_ceil(8);
const HEADER: usize = MAGIC.len() + 8 + TRIGRAM_BYTES;
const WORD_MAX: usize = 24;
const HASHES: u64 = 3;
/// The Bloom filter starts at 64 bits per row (at most 32 Mibit) and is folded in halves while
/// no more than about a quarter of its bits are set (a few percent false positives).
const BLOOM_MAX_BITS: usize = 1 << 25;
const BLOOM_MIN_BITS: usize = 1 << 12;
const SEP: u8 = 0;

/// Where a lake file's sketch lives; hidden, so engines reading `*.parquet` never see it.
pub(crate) fn sketch_path(parquet: &Path) -> PathBuf {
    let name = parquet
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    parquet.with_file_name(format!(".{name}.sketch"))
}

/// Folded form of each byte below 0x80: a letter or digit, else `SEP`.
const FOLD: [u8; 128] = {
    let mut t = [SEP; 128];
    let mut i = 0;
    while i < 128 {
        let b = i as u8;
        t[i] = match b {
            b'a'..=b'z' | b'0'..=b'9' => b,
            b'A'..=b'Z' => b + 32,
            _ => SEP,
        };
        i += 1;
    }
    t
};

/// The folded byte at `*i` (`a`-`z`, `0`-`9` or `SEP`), advancing `*i` past it.
#[inline(always)]
fn next_folded(text: &[u8], i: &mut usize) -> u8 {
    let b = text[*i];
    *i += 1;
    if b < 0x80 {
        FOLD[b as usize]
    } else if b == 0xE2 && text[*i..].starts_with(&[0x84, 0xAA]) {
        *i += 2;
        b'k'
    } else if b == 0xC5 && text.get(*i) == Some(&0xBF) {
        *i += 1;
        b's'
    } else {
        SEP
    }
}

/// Calls `f` with each folded byte.
fn fold(text: &[u8], mut f: impl FnMut(u8)) {
    let mut i = 0;
    while i < text.len() {
        f(next_folded(text, &mut i));
    }
}

/// Trigram class of an ASCII byte: letters of either case, digits, else the separator.
const CLASS: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        let b = i as u8;
        t[i] = match b {
            b'a'..=b'z' => b - b'a' + 1,
            b'A'..=b'Z' => b - b'A' + 1,
            b'0'..=b'9' => b - b'0' + 27,
            _ => 0,
        };
        i += 1;
    }
    t
};

fn class(b: u8) -> usize {
    CLASS[(b & 0x7f) as usize] as usize
}

/// FNV-1a with a final mix; fixed here because sketches are stored, so the hash is a format.
fn hash(word: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in &word[..word.len().min(WORD_MAX)] {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Where a word's bits go: one 64-bit block (so one cache miss per word) chosen by the low
/// bits, valid for any power-of-two block count (so halving by OR keeps every word), and
/// `HASHES` bits inside it chosen by the high bits.
fn block_and_mask(h: u64, blocks: usize) -> (usize, u64) {
    let mut mask = 0u64;
    for i in 0..HASHES {
        mask |= 1 << ((h >> (40 + 6 * i)) & 63);
    }
    ((h as usize) & (blocks - 1), mask)
}

/// The words of folded text whose ends are certain: inner words always, and the first and
/// last too when the text is bounded (`whole`), since only then can they not run on into the
/// payload's neighbouring letters.
fn certain_words(folded: &[u8], whole: bool) -> impl Iterator<Item = &[u8]> {
    let parts: Vec<&[u8]> = folded.split(|&c| c == SEP).collect();
    let last = parts.len() - 1;
    parts
        .into_iter()
        .enumerate()
        .filter(move |(i, w)| !w.is_empty() && (whole || (*i != 0 && *i != last)))
        .map(|(_, w)| w)
}

fn add_word(bloom: &mut [u64], recent: &mut [u64], word: &mut Vec<u8>) {
    let blocks = bloom.len();
    let mut set = |w: &[u8]| {
        let h = hash(w);
        // Field names and common values repeat on every row: a small cache of recent words
        // spares most trips to the (cache-missing) filter.
        let slot = &mut recent[(h >> 20) as usize & (RECENT - 1)];
        if *slot != h {
            *slot = h;
            let (b, m) = block_and_mask(h, blocks);
            bloom[b] |= m;
        }
    };
    set(word);
    // A number compared by value may be stored with leading zeros or an exponent ("0042",
    // "42e0"), so a word starting with digits also stands for its leading digits.
    if word[0].is_ascii_digit() {
        let digits = word.iter().take_while(|b| b.is_ascii_digit()).count();
        let lead = &word[..digits];
        let trimmed = match lead.iter().position(|&b| b != b'0') {
            Some(i) => &lead[i..],
            None => &lead[lead.len() - 1..],
        };
        if digits < word.len() {
            set(lead);
        }
        if trimmed.len() < lead.len() {
            set(trimmed);
        }
    }
    word.clear();
}

pub(crate) struct SketchBuilder {
    /// One trigram bitmap per block; the file's bitmap is their union, made when written.
    blocks: Vec<u8>,
    bloom: Vec<u64>,
    recent: Vec<u64>,
    word: Vec<u8>,
}

const RECENT: usize = 1 << 12;

impl SketchBuilder {
    /// A builder for about `rows` texts (the filter starts at 64 bits per row, within limits).
    pub(crate) fn new(rows: usize) -> Self {
        let bits = (rows * 64)
            .next_power_of_two()
            .clamp(BLOOM_MIN_BITS, BLOOM_MAX_BITS);
        SketchBuilder {
            blocks: Vec::new(),
            bloom: vec![0; bits / 64],
            recent: vec![0; RECENT],
            word: Vec::with_capacity(WORD_MAX),
        }
    }

    /// Adds the searched text of the file's row `row`. Runs for every captured byte, so ASCII
    /// text (nearly all JSON) takes a branch-light path; other text goes byte by byte through
    /// `fold`.
    pub(crate) fn add(&mut self, row: usize, text: &[u8]) {
        if !text.is_ascii() {
            let mut folded = Vec::with_capacity(text.len());
            fold(text, |c| folded.push(c));
            return self.add(row, &folded);
        }
        let at = row / BLOCK_ROWS * TRIGRAM_BYTES;
        if self.blocks.len() < at + TRIGRAM_BYTES {
            self.blocks.resize(at + TRIGRAM_BYTES, 0);
        }
        let block = &mut self.blocks[at..at + TRIGRAM_BYTES];
        // Trigrams. The classes of the last two bytes; the text's start counts as a separator.
        // A separator after a separator leaves them as they are (runs collapse); the bit it
        // sets, for (x, SEP, SEP), is one no query ever asks about.
        let (mut a, mut b) = (0usize, 0usize);
        for &byte in text.iter().chain(std::iter::once(&b' ')) {
            let k = CLASS[byte as usize] as usize;
            let t = (a * CLASSES + b) * CLASSES + k;
            block[t / 8] |= 1 << (t % 8);
            let keep = k == 0 && b == 0;
            a = if keep { a } else { b };
            b = if keep { b } else { k };
        }
        for w in text.split(|c| !c.is_ascii_alphanumeric()) {
            if !w.is_empty() {
                self.word.clear();
                self.word.extend(
                    w[..w.len().min(WORD_MAX)]
                        .iter()
                        .map(|c| c.to_ascii_lowercase()),
                );
                add_word(&mut self.bloom, &mut self.recent, &mut self.word);
            }
        }
    }

    /// Writes the sketch next to `parquet` (temp file, fsync, rename) before the Parquet file
    /// itself appears, so every visible file has its sketch.
    pub(crate) fn write(mut self, parquet: &Path) -> std::io::Result<()> {
        while self.bloom.len() * 64 > BLOOM_MIN_BITS {
            let half = self.bloom.len() / 2;
            let folded_fill: usize = (0..half)
                .map(|i| (self.bloom[i] | self.bloom[i + half]).count_ones() as usize)
                .sum();
            if folded_fill * 4 > half * 64 {
                break;
            }
            let (lo, hi) = self.bloom.split_at_mut(half);
            for (l, h) in lo.iter_mut().zip(hi.iter()) {
                *l |= *h;
            }
            self.bloom.truncate(half);
        }
        let mut trigrams = vec![0u8; TRIGRAM_BYTES];
        for block in self.blocks.chunks(TRIGRAM_BYTES) {
            for (t, b) in trigrams.iter_mut().zip(block) {
                *t |= b;
            }
        }
        let path = sketch_path(parquet);
        let tmp = crate::temp::TempFile::beside(&path)?;
        let mut f = tmp.handle()?;
        let mut buf = Vec::with_capacity(HEADER + self.bloom.len() * 8 + 8 + self.blocks.len());
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&((self.bloom.len() * 64) as u64).to_le_bytes());
        buf.extend_from_slice(&trigrams);
        for w in &self.bloom {
            buf.extend_from_slice(&w.to_le_bytes());
        }
        buf.extend_from_slice(&(BLOCK_ROWS as u32).to_le_bytes());
        buf.extend_from_slice(&((self.blocks.len() / TRIGRAM_BYTES) as u32).to_le_bytes());
        buf.extend_from_slice(&self.blocks);
        f.write_all(&buf)?;
        f.sync_all()?;
        tmp.persist(&path)
    }
}

/// A lake file's sketch, opened for questions.
pub(crate) struct Sketch {
    file: std::fs::File,
    trigrams: Vec<u8>,
    bits: usize,
    /// Rows per block and the number of blocks (0 for a sketch without block bitmaps).
    block_rows: usize,
    block_count: usize,
    /// The block bitmaps, read on the first question that needs them.
    blocks: std::cell::OnceCell<Option<Vec<u8>>>,
}

impl Sketch {
    /// `None` when the file has no readable sketch (written by an older Sluice, or damaged).
    pub(crate) fn open(parquet: &Path) -> Option<Sketch> {
        let mut file = std::fs::File::open(sketch_path(parquet)).ok()?;
        let mut head = vec![0u8; HEADER];
        file.read_exact(&mut head).ok()?;
        let with_blocks = match &head[..8] {
            m if m == MAGIC => true,
            m if m == MAGIC_V1 => false,
            _ => return None,
        };
        let bits = u64::from_le_bytes(head[8..16].try_into().ok()?) as usize;
        let len = file.metadata().ok()?.len() as usize;
        if !bits.is_power_of_two() {
            return None;
        }
        let (mut block_rows, mut block_count) = (0, 0);
        if with_blocks {
            let mut counts = [0u8; 8];
            file.read_exact_at(&mut counts, (HEADER + bits / 8) as u64)
                .ok()?;
            block_rows = u32::from_le_bytes(counts[..4].try_into().ok()?) as usize;
            block_count = u32::from_le_bytes(counts[4..].try_into().ok()?) as usize;
        }
        let expected = HEADER
            + bits / 8
            + if with_blocks {
                8 + block_count * TRIGRAM_BYTES
            } else {
                0
            };
        if len != expected || (with_blocks && block_rows == 0) {
            return None;
        }
        Some(Sketch {
            file,
            trigrams: head[16..].to_vec(),
            bits,
            block_rows,
            block_count,
            blocks: std::cell::OnceCell::new(),
        })
    }

    /// Per block, whether it holds every trigram; `None` when the sketch has no blocks (or
    /// they cannot be read), which allows every row.
    fn blocks_with(&self, trigrams: &[usize]) -> Option<Vec<bool>> {
        let blocks = self
            .blocks
            .get_or_init(|| {
                if self.block_count == 0 {
                    return None;
                }
                let mut buf = vec![0u8; self.block_count * TRIGRAM_BYTES];
                let at = HEADER + self.bits / 8 + 8;
                self.file
                    .read_exact_at(&mut buf, at as u64)
                    .ok()
                    .map(|()| buf)
            })
            .as_ref()?;
        Some(
            blocks
                .chunks(TRIGRAM_BYTES)
                .map(|b| trigrams.iter().all(|&t| b[t / 8] & (1 << (t % 8)) != 0))
                .collect(),
        )
    }

    fn has_trigram(&self, t: usize) -> bool {
        self.trigrams[t / 8] & (1 << (t % 8)) != 0
    }

    fn has_word(&self, w: &[u8]) -> bool {
        let (b, m) = block_and_mask(hash(w), self.bits / 64);
        let mut block = [0u8; 8];
        match self.file.read_exact_at(&mut block, (HEADER + b * 8) as u64) {
            Ok(()) => u64::from_le_bytes(block) & m == m,
            Err(_) => true,
        }
    }

    /// Whether some event in the file may contain `text` (see `Needs::Contains`).
    pub(crate) fn may_contain(&self, text: &str, whole: bool) -> bool {
        let folded = folded_needle(text, whole);
        trigrams_of(&folded).iter().all(|&t| self.has_trigram(t))
            && certain_words(&folded, whole).all(|w| self.has_word(w))
    }
}

/// `text` folded as the sketch folds what it summarises, separator runs collapsed, with
/// separators at both ends when it must match whole words.
fn folded_needle(text: &str, whole: bool) -> Vec<u8> {
    let mut folded = Vec::with_capacity(text.len() + 2);
    if whole {
        folded.push(SEP);
    }
    fold(text.as_bytes(), |c| {
        if !(c == SEP && folded.last() == Some(&SEP)) {
            folded.push(c);
        }
    });
    if whole && folded.last() != Some(&SEP) {
        folded.push(SEP);
    }
    folded
}

fn trigrams_of(folded: &[u8]) -> Vec<usize> {
    folded
        .windows(3)
        .map(|w| (class(w[0]) * CLASSES + class(w[1])) * CLASSES + class(w[2]))
        .collect()
}

/// Whether a file may hold a match for `needs`. `times` is the file's (min, max) event time
/// from its name; the sketch is opened only when a text condition needs it.
pub(crate) fn may_match(
    needs: &Needs,
    parquet: &Path,
    times: Option<(i64, i64)>,
    sketch: &mut Option<Option<Sketch>>,
) -> bool {
    match needs {
        Needs::Anything => true,
        Needs::All(v) => v.iter().all(|n| may_match(n, parquet, times, sketch)),
        Needs::Any(v) => v.iter().any(|n| may_match(n, parquet, times, sketch)),
        Needs::TimeFrom(t) => times.is_none_or(|(_, max)| max >= *t),
        // Names clamp times below zero to zero, so only a positive bound can rule a file out.
        Needs::TimeBefore(t) => times.is_none_or(|(min, _)| *t <= 0 || min < *t),
        Needs::Contains { text, whole } => sketch
            .get_or_insert_with(|| Sketch::open(parquet))
            .as_ref()
            .is_none_or(|s| s.may_contain(text, *whole)),
        Needs::Number(digits) => sketch
            .get_or_insert_with(|| Sketch::open(parquet))
            .as_ref()
            .is_none_or(|s| s.may_contain(digits, false) && s.has_word(digits.as_bytes())),
    }
}

/// The row ranges of a file (first and last row, inclusive) that may hold a match for `needs`,
/// from its block bitmaps; `None` when every row may (or the sketch cannot tell). Call only for
/// a file `may_match` allows.
pub(crate) fn rows_to_read(
    needs: &Needs,
    sketch: &mut Option<Option<Sketch>>,
    parquet: &Path,
) -> Option<Vec<(u64, u64)>> {
    let s = sketch
        .get_or_insert_with(|| Sketch::open(parquet))
        .as_ref()?;
    let mask = block_mask(needs, s)?;
    if mask.iter().all(|&b| b) {
        return None;
    }
    let rows = s.block_rows as u64;
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for (i, _) in mask.iter().enumerate().filter(|(_, b)| **b) {
        let (first, last) = (i as u64 * rows, (i as u64 + 1) * rows - 1);
        match ranges.last_mut() {
            Some(r) if r.1 + 1 == first => r.1 = last,
            _ => ranges.push((first, last)),
        }
    }
    // Rows past the last bitmap have no searched text, so no text condition can match them.
    Some(ranges)
}

/// Per block, whether it may hold a match; `None` means every block may.
fn block_mask(needs: &Needs, s: &Sketch) -> Option<Vec<bool>> {
    let combine = |v: &[Needs], all: bool| {
        let masks: Vec<Option<Vec<bool>>> = v.iter().map(|n| block_mask(n, s)).collect();
        let mut known = masks.iter().flatten();
        let first = known.next()?.clone();
        if !all && masks.iter().any(Option::is_none) {
            return None;
        }
        Some(known.fold(first, |acc, m| {
            acc.iter()
                .zip(m)
                .map(|(a, b)| if all { *a && *b } else { *a || *b })
                .collect()
        }))
    };
    match needs {
        Needs::All(v) => combine(v, true),
        Needs::Any(v) => combine(v, false),
        Needs::Contains { text, whole } => {
            s.blocks_with(&trigrams_of(&folded_needle(text, *whole)))
        }
        Needs::Number(digits) => s.blocks_with(&trigrams_of(&folded_needle(digits, false))),
        Needs::Anything | Needs::TimeFrom(_) | Needs::TimeBefore(_) => None,
    }
}

/// Builds a sketch for a batch about to be written, from the same columns search reads.
pub(crate) fn of_batch(batch: &arrow::record_batch::RecordBatch) -> SketchBuilder {
    of_batches(std::slice::from_ref(batch))
}

/// `of_batch` for a file written as several batches, in order.
pub(crate) fn of_batches(batches: &[arrow::record_batch::RecordBatch]) -> SketchBuilder {
    let mut s = SketchBuilder::new(batches.iter().map(|b| b.num_rows()).sum());
    let mut first = 0;
    for batch in batches {
        add_batch(&mut s, batch, first);
        first += batch.num_rows();
    }
    s
}

fn add_batch(s: &mut SketchBuilder, batch: &arrow::record_batch::RecordBatch, first: usize) {
    use arrow::array::{Array, AsArray};
    let col = |name: &str| {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_string_opt::<i32>())
    };
    let (decoded, text) = (
        col(crate::columns::DECODED.name),
        col(crate::columns::PAYLOAD_TEXT.name),
    );
    for i in 0..batch.num_rows() {
        let searched = match (decoded, text) {
            (Some(d), _) if d.is_valid(i) => Some(d.value(i)),
            (_, Some(t)) if t.is_valid(i) => Some(t.value(i)),
            _ => None,
        };
        if let Some(s_text) = searched {
            s.add(first + i, s_text.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sketch_of(texts: &[&str]) -> (tempfile::TempDir, Sketch) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("part-1-1-x.parquet");
        let mut b = SketchBuilder::new(texts.len());
        for (i, t) in texts.iter().enumerate() {
            b.add(i, t.as_bytes());
        }
        b.write(&p).unwrap();
        let s = Sketch::open(&p).unwrap();
        (dir, s)
    }

    #[test]
    fn present_text_is_never_ruled_out() {
        let (_d, s) = sketch_of(&[
            r#"{"id":"order-00000042-x","note":"Payment DECLINED by bank","n":4242,"z":"0077"}"#,
            "plain \u{212A}afka text with \u{17F}ome folding",
        ]);
        for (t, whole) in [
            ("payment declined", false),
            ("ment decl", false),
            ("PAYMENT", false),
            ("declined by", false),
            ("4242", true),
            ("order-00000042-x", true),
            ("42", true),
            ("kafka", false),
            ("plain kafka text", false),
            ("some", false),
            ("with some fold", false),
        ] {
            assert!(s.may_contain(t, whole), "{t:?} must be allowed");
        }
    }

    /// Random texts over letters of both cases, digits, punctuation and the characters that fold
    /// specially; every substring, in any ASCII case, must be allowed.
    #[test]
    fn every_substring_in_any_case_is_allowed() {
        let alphabet: Vec<char> = "aBcKkSs09 -_\"\\:{}é\u{212A}\u{17F}\u{2C7E}\n"
            .chars()
            .collect();
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..200 {
            let text: Vec<char> = (0..1 + next(40))
                .map(|_| alphabet[next(alphabet.len())])
                .collect();
            let (_d, s) = sketch_of(&[&text.iter().collect::<String>()]);
            for _ in 0..20 {
                let a = next(text.len());
                let b = a + 1 + next(text.len() - a);
                let sub: String = text[a..b]
                    .iter()
                    .map(|c| {
                        if next(2) == 0 {
                            c.to_ascii_uppercase()
                        } else {
                            *c
                        }
                    })
                    .collect();
                assert!(s.may_contain(&sub, false), "{sub:?} in {text:?}");
            }
        }
    }

    #[test]
    fn numbers_are_found_by_value() {
        let (d, _) = sketch_of(&[r#"{"a":"0077","b":42e0,"c":-5,"d":12.0}"#]);
        let p = d.path().join("part-1-1-x.parquet");
        for n in ["77", "42", "5", "12"] {
            assert!(
                may_match(&Needs::Number(n.into()), &p, None, &mut None),
                "{n}"
            );
        }
        assert!(!may_match(&Needs::Number("7".into()), &p, None, &mut None));
    }

    #[test]
    fn absent_words_and_trigrams_rule_a_file_out() {
        let (_d, s) = sketch_of(&[r#"{"status":"PAID","customer":{"id":17}}"#]);
        assert!(!s.may_contain("zebra", false), "trigrams absent");
        assert!(!s.may_contain("4243", true), "word absent");
        assert!(!s.has_word(b"4243"));
        assert!(!s.may_contain("paid customer xyz", false));
        assert!(s.may_contain("17", true));
        assert!(s.may_contain("aid", false), "substring of a word");
    }

    #[test]
    fn block_bitmaps_narrow_reads_to_the_rows_that_may_match() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("part-1-1-b.parquet");
        let mut b = SketchBuilder::new(3 * BLOCK_ROWS);
        b.add(0, b"alpha");
        b.add(BLOCK_ROWS + 5, b"Zebra crossing");
        b.add(2 * BLOCK_ROWS + 1, "\u{212A}ilo ALPHA zebra".as_bytes());
        b.write(&p).unwrap();
        let r = BLOCK_ROWS as u64;
        let contains = |t: &str| Needs::Contains {
            text: t.into(),
            whole: false,
        };
        let rows = |n: &Needs| rows_to_read(n, &mut None, &p);
        assert_eq!(rows(&contains("zebra")), Some(vec![(r, 3 * r - 1)]));
        assert_eq!(
            rows(&contains("alpha")),
            Some(vec![(0, r - 1), (2 * r, 3 * r - 1)])
        );
        assert_eq!(rows(&contains("kilo")), Some(vec![(2 * r, 3 * r - 1)]));
        assert_eq!(rows(&contains("nowhere")), Some(vec![]));
        let both = Needs::All(vec![
            contains("alpha"),
            contains("zebra"),
            Needs::TimeFrom(1),
        ]);
        assert_eq!(rows(&both), Some(vec![(2 * r, 3 * r - 1)]));
        let either = Needs::Any(vec![contains("crossing"), contains("alpha")]);
        assert_eq!(rows(&either), None, "every block may match");
        let vague = Needs::Any(vec![contains("zebra"), Needs::TimeFrom(1)]);
        assert_eq!(rows(&vague), None);
        assert_eq!(rows(&Needs::Anything), None);
        // A sketch from before block bitmaps narrows nothing, but still rules files out.
        let mut v1 = std::fs::read(sketch_path(&p)).unwrap();
        let end = HEADER + Sketch::open(&p).unwrap().bits / 8;
        v1.truncate(end);
        v1[..8].copy_from_slice(MAGIC_V1);
        std::fs::write(sketch_path(&p), v1).unwrap();
        assert_eq!(rows(&contains("zebra")), None);
        assert!(!may_match(&contains("nowhere"), &p, None, &mut None));
    }

    #[test]
    fn a_missing_or_damaged_sketch_allows_everything() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("part-1-1-y.parquet");
        let mut cache = None;
        let needs = Needs::Contains {
            text: "anything".into(),
            whole: false,
        };
        assert!(may_match(&needs, &p, None, &mut cache));
        std::fs::write(sketch_path(&p), b"SLSKTCH1garbage").unwrap();
        assert!(Sketch::open(&p).is_none());
    }

    #[test]
    fn time_bounds_use_the_file_range() {
        let p = Path::new("part-200-100-z.parquet");
        let mut c = None;
        assert!(!may_match(
            &Needs::TimeFrom(201),
            p,
            Some((100, 200)),
            &mut c
        ));
        assert!(may_match(
            &Needs::TimeFrom(200),
            p,
            Some((100, 200)),
            &mut c
        ));
        assert!(!may_match(
            &Needs::TimeBefore(100),
            p,
            Some((100, 200)),
            &mut c
        ));
        assert!(may_match(
            &Needs::TimeBefore(101),
            p,
            Some((100, 200)),
            &mut c
        ));
    }
}
