//! An owned, exactly sized byte buffer in 16 bytes: the one block behind each compact encoding
//! (hash and set listpacks, small lists, small sorted sets).
//!
//! A pointer, the length (u32), a 16-bit field its owner uses as it likes (an entry count), and
//! a [`Tag`] byte: two values say which of two encodings the bytes are (a set's intset or
//! listpack), and the other 254 hold the tag of an enum around it, so that `HashValue`,
//! `SetValue`, `ListValue` and `ZSetValue` are 16 bytes each and sit in a keyspace entry without
//! a box of their own. (Hand-written over a `Box<[u8]>` taken apart because a boxed slice plus a
//! count is 24 bytes and leaves no room for a tag.) The buffer has no spare capacity: small
//! collections are many, and their slack adds up.

use std::ptr::NonNull;

/// Which of two encodings a buffer holds, for an owner that keeps either in one `ThinBuf`
/// (`SetValue`'s compact sets). A byte with two valid values: its 254 others are niches, where
/// an enum holding a `ThinBuf` keeps its tag.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum Tag {
    #[default]
    Zero = 0,
    One = 1,
}

/// A type that is a `ThinBuf` and nothing more, so that an owner keeping one of several such
/// types in one `ThinBuf` (`SetValue`: an `IntSet` or a `Packed`, told apart by the [`Tag`]) can
/// lend the buffer as the type it holds.
///
/// # Safety
/// Implementors are `#[repr(transparent)]` wrappers of a `ThinBuf`.
pub unsafe trait OverThinBuf: Sized {
    fn view(buf: &ThinBuf) -> &Self {
        // SAFETY: Self is a transparent wrapper of ThinBuf (the trait's contract).
        unsafe { &*(buf as *const ThinBuf as *const Self) }
    }

    fn view_mut(buf: &mut ThinBuf) -> &mut Self {
        // SAFETY: as in `view`.
        unsafe { &mut *(buf as *mut ThinBuf as *mut Self) }
    }
}

pub struct ThinBuf {
    /// `len` bytes from a `Box<[u8]>` (dangling when empty), owned by this value.
    ptr: NonNull<u8>,
    len: u32,
    meta: u16,
    tag: Tag,
}

// SAFETY: a `ThinBuf` owns its bytes exclusively, like the `Box<[u8]>` they came from.
unsafe impl Send for ThinBuf {}
// SAFETY: shared access only reads the bytes.
unsafe impl Sync for ThinBuf {}

impl Drop for ThinBuf {
    fn drop(&mut self) {
        drop(self.take());
    }
}

impl Default for ThinBuf {
    fn default() -> Self {
        ThinBuf::new(Vec::new(), 0)
    }
}

impl Clone for ThinBuf {
    fn clone(&self) -> Self {
        ThinBuf::tagged(self.bytes().to_vec(), self.meta, self.tag)
    }
}

impl ThinBuf {
    /// The bytes of `v`, exactly: a vector with much slack is copied into a fresh block (an
    /// allocator keeps a block that shrinks by less than half where it is, which would release
    /// nothing), one with little is shrunk where it is.
    pub fn new(v: Vec<u8>, meta: u16) -> ThinBuf {
        ThinBuf::tagged(v, meta, Tag::Zero)
    }

    /// As [`ThinBuf::new`], tagged: the tag stays through edits and clones.
    pub fn tagged(v: Vec<u8>, meta: u16, tag: Tag) -> ThinBuf {
        let b: Box<[u8]> = if v.capacity() > v.len() + v.len() / 4 + 8 { v.as_slice().into() } else { v.into() };
        // The encodings built on this one convert long before 4 GiB (Redis's listpacks stop
        // at 1 GiB: see `packed::SAFETY_BYTES`).
        let len = u32::try_from(b.len()).expect("a compact encoding's buffer exceeds 4 GiB");
        let ptr = NonNull::new(Box::into_raw(b) as *mut u8).expect("Box pointers are not null");
        ThinBuf { ptr, len, meta, tag }
    }

    /// Take the bytes out, leaving this empty.
    fn take(&mut self) -> Vec<u8> {
        let (ptr, len) = (self.ptr, self.len as usize);
        self.ptr = NonNull::dangling();
        self.len = 0;
        // SAFETY: `ptr` and `len` came from `Box::into_raw` of a `Box<[u8]>` (new) and this
        // value owned it; it now holds the dangling pointer of an empty slice instead, which
        // `Box::from_raw` accepts too.
        unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr.as_ptr(), len)) }.into_vec()
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` points to `len` initialised bytes owned by this value (see new).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len as usize) }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len as usize) }
    }

    /// The buffer's length in bytes.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn meta(&self) -> u16 {
        self.meta
    }

    pub fn tag(&self) -> Tag {
        self.tag
    }

    /// `meta` read as an entry count: exact below `u16::MAX`; at it, `walk` counts them.
    pub fn count(&self, walk: impl FnOnce() -> usize) -> usize {
        match self.meta {
            u16::MAX => walk(),
            n => n as usize,
        }
    }

    /// Keep `n` as the entry count (`u16::MAX` for that many or more: see [`ThinBuf::count`]).
    pub fn set_count(&mut self, n: usize) {
        self.meta = n.min(u16::MAX as usize) as u16;
    }

    /// Edit the bytes as a vector with room for `extra` more, then keep them exactly again.
    pub fn edit<R>(&mut self, extra: usize, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        let (meta, tag) = (self.meta, self.tag);
        let mut v = self.take();
        // Exact even when large: the allocator grows a block in place while its size class
        // has room (and huge blocks by remapping), so appends stay cheap without a capacity.
        v.reserve_exact(extra);
        let r = f(&mut v);
        *self = ThinBuf::tagged(v, meta, tag);
        r
    }

    /// Replace `remove` bytes at `at` with `add` bytes (the bytes after move); returns the
    /// `add` bytes to write.
    pub fn splice(&mut self, at: usize, remove: usize, add: usize) -> &mut [u8] {
        self.edit(add.saturating_sub(remove), |v| {
            let end = v.len();
            if add > remove {
                v.resize(end + add - remove, 0);
            }
            v.copy_within(at + remove..end, at + add);
            v.truncate(end + add - remove);
        });
        &mut self.bytes_mut()[at..at + add]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_bytes_with_room_for_a_tag() {
        enum Around {
            _Thin(ThinBuf),
            _Boxed(Box<u64>),
        }
        assert_eq!(std::mem::size_of::<ThinBuf>(), 16);
        assert_eq!(std::mem::size_of::<Option<ThinBuf>>(), 16);
        assert_eq!(std::mem::size_of::<Around>(), 16);
    }

    #[test]
    fn splices_grow_shrink_and_keep_the_rest() {
        let mut b = ThinBuf::new(b"hello world".to_vec(), 7);
        b.splice(5, 1, 3).copy_from_slice(b"___");
        assert_eq!(b.bytes(), b"hello___world");
        b.splice(0, 5, 0);
        assert_eq!(b.bytes(), b"___world");
        b.splice(8, 0, 1).copy_from_slice(b"!");
        assert_eq!((b.bytes(), b.meta(), b.clone().bytes().len()), (&b"___world!"[..], 7, 9));
        b.set_count(70_000);
        assert_eq!((b.meta(), b.count(|| 70_000)), (u16::MAX, 70_000));
        b.set_count(12);
        assert_eq!(b.count(|| unreachable!("an exact count")), 12);
        assert!(ThinBuf::default().is_empty());
        let mut t = ThinBuf::tagged(b"ab".to_vec(), 2, Tag::One);
        t.splice(1, 0, 1).copy_from_slice(b"-");
        assert_eq!((t.bytes(), t.tag(), t.clone().tag(), b.tag()), (&b"a-b"[..], Tag::One, Tag::One, Tag::Zero));
    }
}
