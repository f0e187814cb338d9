//! AVX-512, one message per 32-bit lane of a vector: sixteen messages in the 512-bit registers,
//! or eight in the 256-bit ones (AVX-512VL gives those the same rotate and three-way logic
//! instructions). Each round is the textbook one, applied to every lane at once; the message
//! blocks are turned from one row per message into one vector per word by a transpose.

use super::K32;
use core::arch::x86_64::*;

/// The CPU has the instructions of [`compress16`].
pub(super) fn available16() -> bool {
    is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw")
}

/// The CPU has the instructions of [`compress8`].
pub(super) fn available8() -> bool {
    is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl") && is_x86_feature_detected!("avx2")
}

/// The 64 rounds of one block over `state` (vector `i` holds word `i` of every lane), with the
/// block's sixteen words in `w` (vector `t` holds word `t` of every lane, big-endian decoded),
/// then the state's feed-forward. The intrinsics are named for the register width.
macro_rules! block_rounds {
    ($state:expr, $w:expr, $add:ident, $ror:ident, $shr:ident, $tern:ident, $set1:ident) => {{
        let w = &mut $w;
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *$state;
        for t in 0..64 {
            let wt = if t < 16 {
                w[t]
            } else {
                let (w15, w2) = (w[(t - 15) % 16], w[(t - 2) % 16]);
                let s0 = $tern::<0x96>($ror::<7>(w15), $ror::<18>(w15), $shr::<3>(w15));
                let s1 = $tern::<0x96>($ror::<17>(w2), $ror::<19>(w2), $shr::<10>(w2));
                let n = $add($add(w[t % 16], s0), $add(w[(t - 7) % 16], s1));
                w[t % 16] = n;
                n
            };
            let kw = $add(wt, $set1(K32[t] as i32));
            let s1 = $tern::<0x96>($ror::<6>(e), $ror::<11>(e), $ror::<25>(e));
            let ch = $tern::<0xCA>(e, f, g);
            let t1 = $add($add(h, kw), $add(s1, ch));
            let s0 = $tern::<0x96>($ror::<2>(a), $ror::<13>(a), $ror::<22>(a));
            let maj = $tern::<0xE8>(a, b, c);
            let t2 = $add(s0, maj);
            (h, g, f, e, d, c, b, a) = (g, f, e, $add(d, t1), c, b, a, $add(t1, t2));
        }
        for (s, n) in $state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
            *s = $add(*s, n);
        }
    }};
}

/// Runs the first `blocks` 64-byte blocks of sixteen messages through their states (a message
/// shorter than that is a bug, and panics rather than giving a wrong digest).
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) fn compress16(states: &mut [[u32; 8]; 16], data: [&[u8]; 16], blocks: usize) {
    // SAFETY: each word's lanes are 64 readable bytes; the load has no alignment requirement.
    let mut state = by_word(states).map(|w| unsafe { _mm512_loadu_si512(w.as_ptr().cast()) });
    let bswap = _mm512_broadcast_i32x4(_mm_set_epi64x(0x0C0D_0E0F_0809_0A0B, 0x0405_0607_0001_0203));
    for b in 0..blocks {
        let mut w: [__m512i; 16] = core::array::from_fn(|l| {
            let row = &data[l][64 * b..64 * b + 64];
            // SAFETY: `row` is 64 readable bytes; the load has no alignment requirement.
            unsafe { _mm512_loadu_si512(row.as_ptr().cast()) }
        });
        transpose16(&mut w);
        for v in &mut w {
            *v = _mm512_shuffle_epi8(*v, bswap);
        }
        block_rounds!(&mut state, w, _mm512_add_epi32, _mm512_ror_epi32, _mm512_srli_epi32, _mm512_ternarylogic_epi32, _mm512_set1_epi32);
    }
    let mut words = [[0u32; 16]; 8];
    for (w, v) in words.iter_mut().zip(state) {
        // SAFETY: `w` is 64 writable bytes; the store has no alignment requirement.
        unsafe { _mm512_storeu_si512(w.as_mut_ptr().cast(), v) };
    }
    set_by_word(states, &words);
}

/// As [`compress16`], for eight messages in 256-bit registers.
#[target_feature(enable = "avx512f,avx512vl,avx2")]
pub(super) fn compress8(states: &mut [[u32; 8]; 8], data: [&[u8]; 8], blocks: usize) {
    // SAFETY: each word's lanes are 32 readable bytes; the load has no alignment requirement.
    let mut state = by_word(states).map(|w| unsafe { _mm256_loadu_si256(w.as_ptr().cast()) });
    let bswap = _mm256_broadcastsi128_si256(_mm_set_epi64x(0x0C0D_0E0F_0809_0A0B, 0x0405_0607_0001_0203));
    for b in 0..blocks {
        // Words 0–7 and 8–15 of each message, transposed separately.
        let half = |h: usize| -> [__m256i; 8] {
            core::array::from_fn(|l| {
                let row = &data[l][64 * b + 32 * h..64 * b + 32 * h + 32];
                // SAFETY: `row` is 32 readable bytes; the load has no alignment requirement.
                unsafe { _mm256_loadu_si256(row.as_ptr().cast()) }
            })
        };
        let (mut lo, mut hi) = (half(0), half(1));
        transpose8(&mut lo);
        transpose8(&mut hi);
        let mut w: [__m256i; 16] = core::array::from_fn(|t| _mm256_shuffle_epi8(if t < 8 { lo[t] } else { hi[t - 8] }, bswap));
        block_rounds!(&mut state, w, _mm256_add_epi32, _mm256_ror_epi32, _mm256_srli_epi32, _mm256_ternarylogic_epi32, _mm256_set1_epi32);
    }
    let mut words = [[0u32; 8]; 8];
    for (w, v) in words.iter_mut().zip(state) {
        // SAFETY: `w` is 32 writable bytes; the store has no alignment requirement.
        unsafe { _mm256_storeu_si256(w.as_mut_ptr().cast(), v) };
    }
    set_by_word(states, &words);
}

/// The states word by word, as the vectors hold them: word `i` of every lane.
fn by_word<const L: usize>(states: &[[u32; 8]; L]) -> [[u32; L]; 8] {
    core::array::from_fn(|i| core::array::from_fn(|l| states[l][i]))
}

/// Back from [`by_word`]'s layout into each lane's state.
fn set_by_word<const L: usize>(states: &mut [[u32; 8]; L], words: &[[u32; L]; 8]) {
    for (i, word) in words.iter().enumerate() {
        for (s, &w) in states.iter_mut().zip(word) {
            s[i] = w;
        }
    }
}

/// Rows to columns: vector `l` holds the sixteen words of message `l`, and afterwards vector `t`
/// holds word `t` of every message (32-bit interleaves, then 64-bit, then two rounds of
/// 128-bit lane shuffles).
#[target_feature(enable = "avx512f")]
fn transpose16(r: &mut [__m512i; 16]) {
    let mut t = [_mm512_setzero_si512(); 16];
    for i in 0..8 {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for i in 0..4 {
        r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for i in 0..2 {
        for j in 0..4 {
            t[8 * i + j] = _mm512_shuffle_i32x4::<0x88>(r[8 * i + j], r[8 * i + 4 + j]);
            t[8 * i + 4 + j] = _mm512_shuffle_i32x4::<0xDD>(r[8 * i + j], r[8 * i + 4 + j]);
        }
    }
    for j in 0..8 {
        r[j] = _mm512_shuffle_i32x4::<0x88>(t[j], t[8 + j]);
        r[8 + j] = _mm512_shuffle_i32x4::<0xDD>(t[j], t[8 + j]);
    }
}

/// As [`transpose16`], for eight vectors of eight words.
#[target_feature(enable = "avx2")]
fn transpose8(r: &mut [__m256i; 8]) {
    let mut t = [_mm256_setzero_si256(); 8];
    for i in 0..4 {
        t[2 * i] = _mm256_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for i in 0..2 {
        r[4 * i] = _mm256_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 1] = _mm256_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 2] = _mm256_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        r[4 * i + 3] = _mm256_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for j in 0..4 {
        t[j] = _mm256_permute2x128_si256::<0x20>(r[j], r[4 + j]);
        t[4 + j] = _mm256_permute2x128_si256::<0x31>(r[j], r[4 + j]);
    }
    *r = t;
}
