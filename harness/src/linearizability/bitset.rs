//! The set of linearized operations, with a hash kept up to date as bits flip.

/// A fixed-size set of op indices. Its hash is the XOR of a pseudo-random word per member
/// (Zobrist hashing), updated in O(1) by [`flip`](Self::flip) instead of rehashing every word
/// at each step of the search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bitset {
    words: Box<[u64]>,
    hash: u64,
}

impl Bitset {
    pub fn new(bits: usize) -> Bitset {
        Bitset {
            words: vec![0; bits.div_ceil(64)].into_boxed_slice(),
            hash: 0,
        }
    }

    /// Adds `i` if absent, removes it if present.
    pub fn flip(&mut self, i: usize) {
        self.words[i / 64] ^= 1 << (i % 64);
        self.hash ^= mix(i as u64);
    }

    pub fn contains(&self, i: usize) -> bool {
        self.words[i / 64] & (1 << (i % 64)) != 0
    }

    pub fn hash(&self) -> u64 {
        self.hash
    }
}

/// SplitMix64's finalizer: a bijection of u64 that spreads every input bit over the output.
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_sets_have_equal_hashes_whatever_the_order() {
        let mut a = Bitset::new(130);
        let mut b = Bitset::new(130);
        for i in [0, 64, 129, 7] {
            a.flip(i);
        }
        for i in [7, 129, 3, 0, 64, 3] {
            b.flip(i);
        }
        assert_eq!(a, b);
        assert_eq!(a.hash(), b.hash());
        b.flip(129);
        assert_ne!(a, b);
        assert_ne!(a.hash(), b.hash());
        assert_eq!(Bitset::new(130), {
            a.flip(0);
            a.flip(7);
            a.flip(64);
            a.flip(129);
            a
        });
    }
}
