//! TCP sequence numbers: 32-bit, compared modulo 2^32 (RFC 9293 §3.4), so
//! that "after" keeps its meaning across the wrap.

use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Seq(pub u32);

impl Seq {
    pub fn plus(self, n: u32) -> Seq {
        Seq(self.0.wrapping_add(n))
    }

    /// Bytes from `earlier` to `self` (`self` must not be before it).
    pub fn since(self, earlier: Seq) -> u32 {
        self.0.wrapping_sub(earlier.0)
    }

    pub fn cmp_wrapping(self, other: Seq) -> Ordering {
        (self.0.wrapping_sub(other.0) as i32).cmp(&0)
    }

    pub fn after(self, other: Seq) -> bool {
        self.cmp_wrapping(other) == Ordering::Greater
    }

    pub fn after_or_at(self, other: Seq) -> bool {
        self.cmp_wrapping(other) != Ordering::Less
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_survive_the_wrap() {
        let a = Seq(u32::MAX - 5);
        let b = a.plus(10);
        assert_eq!(b, Seq(4));
        assert!(b.after(a) && !a.after(b));
        assert_eq!(b.since(a), 10);
        assert!(a.after_or_at(a) && !a.after(a));
    }
}
