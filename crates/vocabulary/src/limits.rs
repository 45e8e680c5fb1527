//! Limits on what a head can be trained on, shared by the page, the worker and the CLI.

/// Fewest classes a head can be trained on.
pub const MIN_CLASSES: usize = 2;
/// Most classes a head can be trained on.
pub const MAX_CLASSES: usize = 20;
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
/// Extensions (lower case, no dot) of the photo formats Afinar decodes.
pub const PHOTO_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "webp", "gif", "bmp"];

/// Whether a file name ends in one of [`PHOTO_EXTENSIONS`] (any case).
pub fn is_photo_name(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(_, ext)| {
        PHOTO_EXTENSIONS
            .iter()
            .any(|known| ext.eq_ignore_ascii_case(known))
    })
}
