//! Reading the wire format with exactly the acceptance rules of prost 0.14 as prost-reflect
//! drives it: varints of at most ten bytes (the tenth below 2), keys that fit in 32 bits with
//! a wire type below 6 and a field number above 0, lengths that stay inside their message,
//! and the two ways unknown fields are skipped (see [`skip`]).

use super::plan::{FIXED32, FIXED64, LEN, VARINT};

pub(super) const START_GROUP: u8 = 3;
pub(super) const END_GROUP: u8 = 4;

/// Why the wire bytes do not decode (prost's wording where it has one). A fallback request
/// is not an error: the caller decodes on the general path instead.
#[derive(Debug, thiserror::Error)]
pub enum TranscodeError {
    #[error("failed to decode Protobuf message: {0}")]
    Wire(&'static str),
    /// What prost-reflect's serializer refuses (a timestamp out of range, a non-finite
    /// number in a `google.protobuf.Value`, an `Any` naming an unknown type).
    #[error("{0}")]
    Print(String),
    #[error("this payload needs the general decoder")]
    Unsupported,
}

pub(super) type R<T> = Result<T, TranscodeError>;

pub(super) fn fail<T>(what: &'static str) -> R<T> {
    Err(TranscodeError::Wire(what))
}

pub(super) fn limit<T>() -> R<T> {
    fail("recursion limit reached")
}

/// `start << 32 | end`: where a length-delimited value lies in the input.
#[inline]
pub(super) fn pack(start: usize, end: usize) -> u64 {
    ((start as u64) << 32) | end as u64
}

#[inline]
pub(super) fn unpack(v: u64) -> (usize, usize) {
    ((v >> 32) as usize, v as u32 as usize)
}

#[inline(always)]
pub(super) fn varint(input: &[u8], pos: &mut usize, end: usize) -> R<u64> {
    let p = *pos;
    if p < end {
        let b = input[p];
        if b < 0x80 {
            *pos = p + 1;
            return Ok(u64::from(b));
        }
    }
    varint_long(input, pos, end)
}

fn varint_long(input: &[u8], pos: &mut usize, end: usize) -> R<u64> {
    let mut p = *pos;
    let mut v = 0u64;
    for i in 0..10 {
        if p >= end {
            return fail("invalid varint");
        }
        let b = input[p];
        p += 1;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            if i == 9 && b >= 2 {
                return fail("invalid varint");
            }
            *pos = p;
            return Ok(v);
        }
    }
    fail("invalid varint")
}

/// A field key: (field number, wire type).
#[inline(always)]
pub(super) fn key(input: &[u8], pos: &mut usize, end: usize) -> R<(u32, u8)> {
    let k = varint(input, pos, end)?;
    if k > u64::from(u32::MAX) {
        return fail("invalid key value");
    }
    let wt = (k & 7) as u8;
    if wt > 5 {
        return fail("invalid wire type value");
    }
    let tag = (k as u32) >> 3;
    if tag == 0 {
        return fail("invalid tag value: 0");
    }
    Ok((tag, wt))
}

/// A length-delimited value, packed as [`pack`].
#[inline(always)]
pub(super) fn delimited(input: &[u8], pos: &mut usize, end: usize) -> R<u64> {
    let len = varint(input, pos, end)?;
    if len > (end - *pos) as u64 {
        return fail("buffer underflow");
    }
    let s = *pos;
    *pos = s + len as usize;
    Ok(pack(s, *pos))
}

#[inline(always)]
pub(super) fn fixed<const N: usize>(input: &[u8], pos: &mut usize, end: usize) -> R<u64> {
    if end - *pos < N {
        return fail("buffer underflow");
    }
    let mut b = [0u8; 8];
    b[..N].copy_from_slice(&input[*pos..*pos + N]);
    *pos += N;
    Ok(u64::from_le_bytes(b))
}

/// One value of wire type `wt` (not a group); strings are checked for UTF-8.
#[inline(always)]
pub(super) fn value(input: &[u8], wt: u8, utf8: bool, pos: &mut usize, end: usize) -> R<u64> {
    match wt {
        VARINT => varint(input, pos, end),
        FIXED64 => fixed::<8>(input, pos, end),
        FIXED32 => fixed::<4>(input, pos, end),
        _ => {
            let v = delimited(input, pos, end)?;
            if utf8 {
                let (s, e) = unpack(v);
                if std::str::from_utf8(&input[s..e]).is_err() {
                    return fail("invalid string value: data is not UTF-8 encoded");
                }
            }
            Ok(v)
        }
    }
}

/// Skips an unknown field, returning where it ends. `ctx` is prost's remaining recursion
/// budget. Unknown fields of a message are kept by prost-reflect (`strict` false: only a
/// group spends budget, and needs some left); unknown fields of a map entry and of messages
/// decoded by prost-types go through `skip_field` (`strict` true: every field needs budget).
pub(super) fn skip(
    input: &[u8],
    wt: u8,
    tag: u32,
    mut pos: usize,
    end: usize,
    ctx: u32,
    strict: bool,
) -> R<usize> {
    if strict && ctx == 0 {
        return limit();
    }
    match wt {
        VARINT => {
            varint(input, &mut pos, end)?;
        }
        FIXED64 => {
            fixed::<8>(input, &mut pos, end)?;
        }
        FIXED32 => {
            fixed::<4>(input, &mut pos, end)?;
        }
        LEN => {
            delimited(input, &mut pos, end)?;
        }
        START_GROUP => {
            if ctx == 0 {
                return limit();
            }
            loop {
                let (t, w) = key(input, &mut pos, end)?;
                if w == END_GROUP {
                    if t != tag {
                        return fail("unexpected end group tag");
                    }
                    break;
                }
                pos = skip(input, w, t, pos, end, ctx - 1, strict)?;
            }
        }
        _ => return fail("unexpected end group tag"),
    }
    Ok(pos)
}

#[inline]
pub(super) fn zigzag32(v: u32) -> i32 {
    ((v >> 1) as i32) ^ (-((v & 1) as i32))
}

#[inline]
pub(super) fn zigzag64(v: u64) -> i64 {
    ((v >> 1) as i64) ^ (-((v & 1) as i64))
}
