//! What the randomised codec tests share.

/// xorshift64*: deterministic, so a failure reproduces from the printed iteration.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A seed changed the ways corrupt input arrives: bits flipped, bytes overwritten, inserted,
/// deleted, the end cut, another seed spliced in, the whole repeated (fields given twice), or
/// nested as a length-delimited field (as real messages nest).
#[allow(dead_code)] // not every test binary that shares this module mutates payloads
pub fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(3) {
        match rng.below(8) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            2 => {
                let i = rng.below(v.len() + 1);
                v.insert(i, [0, 1, 0x80, 0xff, 0x0a, 0x12, 0x08][rng.below(7)]);
            }
            3 if !v.is_empty() => {
                let i = rng.below(v.len());
                let n = 1 + rng.below((v.len() - i).min(4));
                v.drain(i..i + n);
            }
            4 => v.truncate(rng.below(v.len() + 1)),
            5 => {
                let other = &seeds[rng.below(seeds.len())];
                let cut = rng.below(other.len() + 1);
                let at = rng.below(v.len() + 1);
                v.splice(at..at, other[..cut].iter().copied());
            }
            6 => {
                let copy = v.clone();
                v.extend(copy);
            }
            _ => {
                let mut outer = vec![0x0a | ((rng.below(15) as u8 + 1) << 3) & 0x78];
                prost::encoding::encode_varint(v.len() as u64, &mut outer);
                outer.extend(&v);
                v = outer;
            }
        }
    }
    v
}
