//! Work split over output rows: both cores busy at batch 1 natively, one thread in the browser.

/// Runs `work(first_row, rows)` over `out` (`rows × width` values) cut into runs of whole rows
/// (multiples of `align` rows, the kernel's tile), in parallel where there are threads.
pub fn for_row_chunks<T: Send>(
    out: &mut [T],
    width: usize,
    rows: usize,
    align: usize,
    work: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    if rows == 0 || width == 0 {
        return;
    }
    let per_task = rows_per_task(rows, align);
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(per_task * width)
            .enumerate()
            .for_each(|(i, chunk)| work(i * per_task, chunk));
    }
    #[cfg(target_arch = "wasm32")]
    for (i, chunk) in out.chunks_mut(per_task * width).enumerate() {
        work(i * per_task, chunk);
    }
}

/// A few tasks per thread, so that uneven tasks even out; one task without threads.
fn rows_per_task(rows: usize, align: usize) -> usize {
    #[cfg(not(target_arch = "wasm32"))]
    let tasks = rayon::current_num_threads() * 4;
    #[cfg(target_arch = "wasm32")]
    let tasks = 1;
    let align = align.max(1);
    rows.div_ceil(tasks).div_ceil(align).max(1) * align
}

/// Runs `work` on one of the pool's threads, so that the parallel layers inside it hand their
/// halves to the other threads by work stealing, not by waking them from the calling thread
/// (a wake-up per layer, dozens per photo). In the browser: `work` as it is.
pub fn on_workers<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    #[cfg(not(target_arch = "wasm32"))]
    return rayon::scope(|_| work());
    #[cfg(target_arch = "wasm32")]
    work()
}
