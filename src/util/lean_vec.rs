//! [`LeanVec`]: a `Vec` whose drop costs nothing while it never allocated.

use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};

/// A `Vec` for per-command scratch lists that are nearly always empty (a keyspace view's
/// effects, events and modified keys). A `Vec`'s drop is an out-of-line call even when it
/// holds nothing (~25 instructions, three of them per command); this one checks inline that
/// nothing was ever allocated and then does nothing. Used as a `Vec` through `Deref`.
pub struct LeanVec<T>(ManuallyDrop<Vec<T>>);

impl<T> LeanVec<T> {
    pub const fn new() -> Self {
        LeanVec(ManuallyDrop::new(Vec::new()))
    }

    /// The contents as a plain `Vec`, leaving this one empty.
    pub fn take(&mut self) -> Vec<T> {
        std::mem::take(&mut *self.0)
    }
}

impl<T> Default for LeanVec<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Deref for LeanVec<T> {
    type Target = Vec<T>;
    fn deref(&self) -> &Vec<T> {
        &self.0
    }
}

impl<T> DerefMut for LeanVec<T> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        &mut self.0
    }
}

impl<T> Drop for LeanVec<T> {
    #[inline]
    fn drop(&mut self) {
        // A vector with no capacity has no allocation and no elements: nothing to release.
        if self.0.capacity() != 0 {
            // SAFETY: the inner vector is dropped exactly once, here, and never used again.
            unsafe { ManuallyDrop::drop(&mut self.0) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn drops_its_elements_and_hands_them_over() {
        let counted = Rc::new(());
        let mut v = LeanVec::new();
        v.push(counted.clone());
        v.push(counted.clone());
        assert_eq!(Rc::strong_count(&counted), 3);
        let taken = v.take();
        assert!(v.is_empty());
        assert_eq!(taken.len(), 2);
        drop(taken);
        v.push(counted.clone());
        drop(v);
        assert_eq!(Rc::strong_count(&counted), 1);
        // Never allocated: nothing to do.
        drop(LeanVec::<Rc<()>>::new());
    }
}
