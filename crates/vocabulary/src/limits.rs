//! Limits on what a head can be trained on and on what the page asks of the browser, shared by
//! the page, the workers and the CLI.

/// Fewest classes a head can be trained on.
pub const MIN_CLASSES: usize = 2;
/// Most classes a head can be trained on.
pub const MAX_CLASSES: usize = 200;
/// Fewest photos a class needs (one to learn from, one to check against).
pub const MIN_PHOTOS_PER_CLASS: usize = 2;
/// Most blocks the fine-tuning stage can unfreeze: all 17 of MobileNetV2's.
pub const MAX_UNFROZEN_BLOCKS: usize = 17;

// Ceilings on the counts a recipe, a project or a head file can ask for: far above any real
// run, low enough that nothing a file asks for can exhaust memory or hold the page for
// hours before the first check.
/// Most epochs of either training stage.
pub const MAX_EPOCHS: usize = 1000;
/// Largest batch.
pub const MAX_BATCH_SIZE: usize = 4096;
/// Most augmented views per photo: each one is a forward pass and a cached row.
pub const MAX_VIEWS: usize = 16;
/// Widest hidden layer a head can have.
pub const MAX_HIDDEN: usize = 4096;
/// Most workers that prepare photos at once in the page: each holds the model and its
/// activations (tens of MB), and more than the cores would only share them.
pub const MAX_PHOTO_WORKERS: u32 = 8;
/// Training photos from which a run's fine-tuning stage is shared with helper workers: below
/// it, starting them costs more than they save.
pub const MIN_PHOTOS_TO_SHARE_TRAINING: usize = 64;
/// Extensions (lower case, no dot) of the photo formats Afinar decodes.
pub const PHOTO_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "webp", "gif", "bmp"];

/// How many workers prepare photos where the person has not chosen: one per core the browser
/// reports (`navigator.hardwareConcurrency`), at most two per GB of memory it reports
/// (`navigator.deviceMemory`, where it does), within `1..=MAX_PHOTO_WORKERS`.
pub fn automatic_photo_workers(cores: Option<f64>, memory_gb: Option<f64>) -> u32 {
    let by_cores = cores.filter(|c| c.is_finite() && *c >= 1.0).unwrap_or(1.0);
    let by_memory = memory_gb
        .filter(|m| m.is_finite() && *m > 0.0)
        .map_or(f64::INFINITY, |m| (2.0 * m).floor());
    by_cores
        .min(by_memory)
        .clamp(1.0, f64::from(MAX_PHOTO_WORKERS)) as u32
}

/// Whether a file name ends in one of [`PHOTO_EXTENSIONS`] (any case).
pub fn is_photo_name(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(_, ext)| {
        PHOTO_EXTENSIONS
            .iter()
            .any(|known| ext.eq_ignore_ascii_case(known))
    })
}
