//! Storage of the flow and listener tables: slots reused through a free
//! list, each with a generation.
//!
//! Invariants: an index names a slot for the table's life (epoll tokens
//! carry it); a slot's generation changes when its occupant is removed,
//! so a token (index, generation) taken for a flow never reaches the
//! flow that reuses the slot. Generations wrap within `mask` (token
//! layouts may have fewer than 8 bits for them).

pub struct Slab<T> {
    slots: Vec<Option<T>>,
    gens: Vec<u8>,
    free: Vec<usize>,
    len: usize,
    mask: u8,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Slab<T> {
    pub fn new() -> Self {
        Self::with_gen_mask(u8::MAX)
    }

    /// Generations kept within `mask` (a token with 7 bits for them: 0x7f).
    pub fn with_gen_mask(mask: u8) -> Self {
        Slab {
            slots: Vec::new(),
            gens: Vec::new(),
            free: Vec::new(),
            len: 0,
            mask,
        }
    }

    /// Occupied slots.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// One past the highest index ever used (for walks by index).
    pub fn bound(&self) -> usize {
        self.slots.len()
    }

    /// Puts `v` in a free slot (a new one if none); its (index, generation).
    pub fn insert(&mut self, v: T) -> (usize, u8) {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(None);
                self.gens.push(0);
                self.slots.len() - 1
            }
        };
        self.slots[index] = Some(v);
        self.len += 1;
        (index, self.gens[index])
    }

    /// Takes the occupant of `index` out; the slot's generation moves on.
    pub fn remove(&mut self, index: usize) -> Option<T> {
        let v = self.slots.get_mut(index)?.take()?;
        self.gens[index] = self.gens[index].wrapping_add(1) & self.mask;
        self.free.push(index);
        self.len -= 1;
        Some(v)
    }

    /// The generation of slot `index` (0 for one never made).
    pub fn gen(&self, index: usize) -> u8 {
        self.gens.get(index).copied().unwrap_or(0)
    }

    /// The occupant of `index`, whatever its generation.
    pub fn get(&self, index: usize) -> Option<&T> {
        self.slots.get(index)?.as_ref()
    }

    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        self.slots.get_mut(index)?.as_mut()
    }

    /// The occupant of `index` if it is still generation `gen`'s (a token
    /// from epoll).
    pub fn checked(&self, index: usize, gen: u8) -> Option<&T> {
        if self.gens.get(index) != Some(&gen) {
            return None;
        }
        self.get(index)
    }

    pub fn checked_mut(&mut self, index: usize, gen: u8) -> Option<&mut T> {
        if self.gens.get(index) != Some(&gen) {
            return None;
        }
        self.get_mut(index)
    }

    /// Occupants with their indices.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|v| (i, v)))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut T)> {
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(|(i, s)| s.as_mut().map(|v| (i, v)))
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().flatten()
    }

    /// Indices of the occupants `pred` picks (to remove them after).
    pub fn select(&self, mut pred: impl FnMut(&T) -> bool) -> Vec<usize> {
        self.iter()
            .filter(|(_, v)| pred(v))
            .map(|(i, _)| i)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_with_a_new_generation() {
        let mut s = Slab::new();
        let (a, ga) = s.insert("a");
        let (b, _) = s.insert("b");
        assert_ne!(a, b);
        assert_eq!(s.len(), 2);
        assert_eq!(s.checked(a, ga), Some(&"a"));
        assert_eq!(s.remove(a), Some("a"));
        assert_eq!(s.remove(a), None, "removed once");
        assert_eq!(s.checked(a, ga), None);
        let (c, gc) = s.insert("c");
        assert_eq!(c, a, "the free slot first");
        assert_ne!(gc, ga);
        assert_eq!(s.checked(c, ga), None, "a stale token misses");
        assert_eq!(s.checked_mut(c, gc).map(|v| *v), Some("c"));
        assert_eq!(s.len(), 2);
        assert_eq!(s.bound(), 2);
    }

    #[test]
    fn generations_wrap_within_the_mask() {
        let mut s = Slab::with_gen_mask(0x7f);
        for _ in 0..200 {
            let (i, g) = s.insert(());
            assert!(g <= 0x7f);
            s.remove(i);
        }
        assert_eq!(s.gen(0), (200 % 128) as u8);
        assert!(s.is_empty());
    }

    #[test]
    fn walks_and_selection_see_only_occupants() {
        let mut s = Slab::new();
        for v in 0..5 {
            s.insert(v);
        }
        s.remove(1);
        assert_eq!(s.select(|v| v % 2 == 0), vec![0, 2, 4]);
        for (_, v) in s.iter_mut() {
            *v *= 10;
        }
        assert_eq!(s.values().copied().collect::<Vec<_>>(), vec![0, 20, 30, 40]);
        assert_eq!(s.get(1), None);
        assert_eq!(s.get(3), Some(&30));
    }
}
