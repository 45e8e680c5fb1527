//! Hostile files are refused in bounded memory: a count a file claims never sizes an allocation
//! before it is checked. One test in its own binary, so that the allocator's peak is this
//! test's alone.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use afinar::head::{self, HeadFileError};

/// The system allocator, counting the bytes in use and their peak.
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on unchanged to `System`, which upholds `GlobalAlloc`'s
// contract; the counters are plain atomics and never touch the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's obligations for `alloc` are passed on as they are.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = IN_USE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (through `alloc` above).
        unsafe { System.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the most bytes it held beyond those in use before.
fn peak_extra<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = IN_USE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed).saturating_sub(before))
}

/// Why a head file was refused (it must be, as unreadable).
fn refusal<T>(result: Result<T, HeadFileError>) -> String {
    match result {
        Ok(_) => panic!("a hostile head file was loaded"),
        Err(e) => {
            assert!(matches!(e, HeadFileError::Unreadable(_)), "{e}");
            e.to_string()
        }
    }
}

#[test]
fn hostile_head_files_are_refused_in_bounded_memory() {
    let device = afinar::device::cpu();
    const MB: usize = 1 << 20;

    // A million hidden units would size a 1,280 × 1,000,000 float layer (5 GB) from a 4 MB file.
    let million = common::crafted_head(
        &["a", "b"],
        &[("hidden.bias", vec![1_000_000]), ("output.bias", vec![2])],
        0,
    );
    let (result, extra) = peak_extra(|| head::load(&million, None, &device));
    let message = refusal(result);
    assert!(message.contains("1000000 units"), "{message}");
    println!(
        "a head claiming a million hidden units: refused with {} KB extra",
        extra / 1024
    );
    assert!(extra < 50 * MB, "{extra} bytes");

    // A class list longer than any head has.
    let names: Vec<String> = (0..100_000).map(|i| format!("class {i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let many = common::crafted_head(&names, &[("hidden.bias", vec![128])], 0);
    let (result, extra) = peak_extra(|| head::load(&many, None, &device));
    let message = refusal(result);
    assert!(message.contains("100000 classes"), "{message}");
    assert!(extra < 50 * MB, "{extra} bytes");

    // Shapes that disagree with each other are refused before the head is made.
    let mismatched = common::crafted_head(
        &["a", "b", "c"],
        &[
            ("hidden.weight", vec![1280, 64]),
            ("hidden.bias", vec![64]),
            ("output.weight", vec![64, 2]),
            ("output.bias", vec![3]),
        ],
        0,
    );
    let message = refusal(head::load(&mismatched, None, &device));
    assert!(message.contains("output.weight"), "{message}");
}
