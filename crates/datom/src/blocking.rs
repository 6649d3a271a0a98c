//! May this thread block on I/O? An engine whose client blocks (the
//! PostgreSQL engine's) must not block an async runtime's worker thread,
//! so it moves its calls to a thread of its own whenever a runtime's handle
//! is current. But a handle is current on the runtime's *blocking* threads
//! too (`tokio::task::spawn_blocking`), where blocking is what they are for,
//! and no public test tells the two apart; there the hop only costs a
//! thread per call. A caller that runs engine calls on such a thread says
//! so with [`may_block`] for as long as the guard lives.
//!
//! ```
//! let _blocking_ok = datacamp_datom::blocking::may_block();
//! assert!(datacamp_datom::blocking::allowed());
//! ```

use std::cell::Cell;
use std::marker::PhantomData;

thread_local! {
    static MAY_BLOCK: Cell<bool> = const { Cell::new(false) };
}

/// While this lives, [`allowed`] is true on this thread. Not `Send`: it
/// describes the thread that made it.
#[derive(Debug)]
#[must_use = "blocking is allowed only while the guard lives"]
pub struct MayBlock {
    before: bool,
    _this_thread: PhantomData<*const ()>,
}

/// Declares that this thread may block (it is a blocking thread, not an
/// async worker) until the guard is dropped.
pub fn may_block() -> MayBlock {
    MayBlock {
        before: MAY_BLOCK.with(|m| m.replace(true)),
        _this_thread: PhantomData,
    }
}

/// Has this thread declared it may block?
pub fn allowed() -> bool {
    MAY_BLOCK.with(Cell::get)
}

impl Drop for MayBlock {
    fn drop(&mut self) {
        MAY_BLOCK.with(|m| m.set(self.before));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_allows_blocking_on_its_thread_only_while_it_lives() {
        assert!(!allowed());
        {
            let _outer = may_block();
            {
                let _inner = may_block();
                assert!(allowed());
            }
            assert!(allowed(), "the outer guard still lives");
            std::thread::spawn(|| assert!(!allowed(), "another thread"))
                .join()
                .unwrap();
        }
        assert!(!allowed());
    }
}
