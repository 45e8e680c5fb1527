//! Augmented views of a training photo: a random resized crop, a horizontal flip and a small
//! colour jitter, each drawn from a seed so that a photo's views are the same on every run,
//! machine and backend (and can be cached).
//!
//! The views are computed once per photo and their backbone outputs kept beside the plain
//! view's; training then draws one view of each photo per epoch.

use image::RgbImage;
use image::imageops::{self, FilterType};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::architecture::INPUT_SIZE;
use crate::preprocess::{ModelInput, decode, sha256_hex};
use afinar_vocabulary::RowsNeeded;

/// How training photos are varied. The defaults ([`Self::new`]) are the usual ImageNet-style
/// augmentation, somewhat milder (flowers fill most of their photos). A plain value (the core
/// builds without Burn); a recipe, a Burn `Config`, holds one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AugmentConfig {
    /// Augmented views per training photo, beside the plain one. Default 4.
    pub views: usize,
    /// Smallest share of the photo's area a crop keeps. Default 0.3.
    pub min_area: f64,
    /// Largest ratio between a crop's width and height (either way round). Default 1.333.
    pub max_aspect: f64,
    /// Mirror half of the views left to right. Default on.
    pub flip: bool,
    /// Brightness, contrast and saturation are each scaled by a factor in `1 ± jitter`.
    /// Default 0.2.
    pub jitter: f64,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl AugmentConfig {
    /// The default settings.
    pub fn new() -> Self {
        Self {
            views: 4,
            min_area: 0.3,
            max_aspect: 1.333,
            flip: true,
            jitter: 0.2,
        }
    }

    pub fn with_views(self, views: usize) -> Self {
        Self { views, ..self }
    }

    pub fn with_min_area(self, min_area: f64) -> Self {
        Self { min_area, ..self }
    }

    pub fn with_max_aspect(self, max_aspect: f64) -> Self {
        Self { max_aspect, ..self }
    }

    pub fn with_flip(self, flip: bool) -> Self {
        Self { flip, ..self }
    }

    pub fn with_jitter(self, jitter: f64) -> Self {
        Self { jitter, ..self }
    }
}

/// Why augmentation settings cannot be used. The message is for people.
pub fn check(config: &AugmentConfig) -> Result<(), String> {
    if config.views == 0 || config.views > MAX_VIEWS {
        return Err(format!(
            "augmented views per photo must be between 1 and {MAX_VIEWS}"
        ));
    }
    if !(0.05..=1.0).contains(&config.min_area) {
        return Err("the smallest crop must keep between 5% and 100% of the photo".into());
    }
    if !(1.0..=3.0).contains(&config.max_aspect) {
        return Err("the crops' aspect ratio limit must be between 1 and 3".into());
    }
    if !(0.0..=0.9).contains(&config.jitter) {
        return Err("the colour jitter must be between 0 and 0.9".into());
    }
    Ok(())
}

pub use afinar_vocabulary::limits::MAX_VIEWS;

impl AugmentConfig {
    /// The `views` augmented 224×224 inputs of one decoded photo. `photo_sha256` (of the file's
    /// bytes) and `seed` decide every random draw, so a photo's views do not depend on the
    /// order or the company it is prepared in.
    pub fn views_of(&self, image: &RgbImage, photo_sha256: &str, seed: u64) -> Vec<ModelInput> {
        (0..self.views)
            .map(|view| self.view(image, photo_sha256, seed, view))
            .collect()
    }

    /// View number `view` (from 0) of [`Self::views_of`] alone.
    pub fn view(&self, image: &RgbImage, photo_sha256: &str, seed: u64, view: usize) -> ModelInput {
        let mut rng = StdRng::seed_from_u64(view_seed(photo_sha256, seed, view));
        self.draw(image, &mut rng)
    }

    /// One view drawn with `rng`.
    fn draw(&self, image: &RgbImage, rng: &mut StdRng) -> ModelInput {
        let (x, y, w, h) = self.crop_box(image.width(), image.height(), rng);
        let crop = imageops::crop_imm(image, x, y, w, h);
        let size = INPUT_SIZE as u32;
        let mut out = imageops::resize(&*crop, size, size, FilterType::Triangle);
        if self.flip && rng.random_bool(0.5) {
            imageops::flip_horizontal_in_place(&mut out);
        }
        if self.jitter > 0.0 {
            let j = self.jitter as f32;
            let mut factor = || rng.random_range(1.0 - j..=1.0 + j);
            jitter(&mut out, factor(), factor(), factor());
        }
        ModelInput::from_input_image(out)
    }

    /// A crop of a random share of the area and aspect ratio (Inception's "random resized
    /// crop"); after ten draws that do not fit, the centred square.
    fn crop_box(&self, width: u32, height: u32, rng: &mut StdRng) -> (u32, u32, u32, u32) {
        let area = f64::from(width) * f64::from(height);
        let log_aspect = self.max_aspect.max(1.0).ln();
        for _ in 0..10 {
            let target = area * rng.random_range(self.min_area.min(1.0)..=1.0);
            let aspect = rng.random_range(-log_aspect..=log_aspect).exp();
            let w = (target * aspect).sqrt().round() as u32;
            let h = (target / aspect).sqrt().round() as u32;
            if (1..=width).contains(&w) && (1..=height).contains(&h) {
                let x = rng.random_range(0..=width - w);
                let y = rng.random_range(0..=height - h);
                return (x, y, w, h);
            }
        }
        let side = width.min(height);
        ((width - side) / 2, (height - side) / 2, side, side)
    }
}

/// A training photo read for preparing: the model's input, the augmented views a recipe asks
/// for, and the sha256 of its file (which seeds the views).
#[derive(Debug)]
pub struct TrainingPhoto {
    pub input: ModelInput,
    pub views: Vec<ModelInput>,
    pub sha256: String,
}

impl TrainingPhoto {
    /// Decodes a photo file and draws the views `rows` asks for; the error says why, for
    /// people.
    pub fn read(bytes: &[u8], rows: RowsNeeded) -> Result<Self, String> {
        rows.check()
            .map_err(|e| format!("This photo can't be prepared: {e}."))?;
        let image = decode(bytes)
            .map_err(|e| format!("This photo can't be read: {e}."))?
            .to_rgb8();
        let sha256 = sha256_hex(bytes);
        let views = match rows.views {
            0 => Vec::new(),
            n => AugmentConfig::new()
                .with_views(n)
                .views_of(&image, &sha256, rows.seed),
        };
        Ok(Self {
            input: ModelInput::from_rgb_image(&image),
            views,
            sha256,
        })
    }
}

/// The seed of one view: the photo's identity, the run's seed and the view's number.
fn view_seed(photo_sha256: &str, seed: u64, view: usize) -> u64 {
    let digest = Sha256::new()
        .chain_update(photo_sha256.as_bytes())
        .chain_update(seed.to_le_bytes())
        .chain_update((view as u64).to_le_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// Scales brightness, then contrast (around the mean grey), then saturation (around each
/// pixel's grey), as torchvision's `ColorJitter` does.
fn jitter(image: &mut RgbImage, brightness: f32, contrast: f32, saturation: f32) {
    let grey = |p: &[f32; 3]| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
    let mut pixels: Vec<[f32; 3]> = image
        .pixels()
        .map(|p| p.0.map(|c| f32::from(c) * brightness))
        .collect();
    let mean = pixels.iter().map(grey).sum::<f32>() / pixels.len().max(1) as f32;
    for (p, out) in pixels.iter_mut().zip(image.pixels_mut()) {
        let contrasted = p.map(|c| (c - mean) * contrast + mean);
        let g = grey(&contrasted);
        out.0 = contrasted.map(|c| ((c - g) * saturation + g).round().clamp(0.0, 255.0) as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A photo-like test image: gradients in every channel, wider than tall.
    fn gradient(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, 128])
        })
    }

    #[test]
    fn views_are_the_same_for_a_seed_and_differ_between_seeds_and_views() {
        let image = gradient(320, 240);
        let config = AugmentConfig::new();
        let a = config.views_of(&image, "photo", 7);
        let b = config.views_of(&image, "photo", 7);
        assert_eq!(a, b, "same photo and seed, same views");
        assert_eq!(a.len(), config.views);
        assert_ne!(a, config.views_of(&image, "photo", 8), "another seed");
        assert_ne!(
            a,
            config.views_of(&image, "other photo", 7),
            "another photo"
        );
        assert_ne!(a[0], a[1], "two views of one photo");
    }

    #[test]
    fn views_change_the_pixels_of_the_plain_input() {
        let image = gradient(320, 240);
        let plain = ModelInput::from_rgb_image(&image);
        for view in AugmentConfig::new().views_of(&image, "photo", 1) {
            let changed = view
                .rgb()
                .iter()
                .zip(plain.rgb())
                .filter(|(a, b)| a != b)
                .count();
            assert!(
                changed > plain.rgb().len() / 4,
                "only {changed} values changed"
            );
        }
    }

    #[test]
    fn without_crops_flips_or_jitter_a_view_is_the_whole_photo_resized() {
        let image = gradient(224, 224);
        let config = AugmentConfig::new()
            .with_min_area(1.0)
            .with_max_aspect(1.0)
            .with_flip(false)
            .with_jitter(0.0);
        for view in config.views_of(&image, "photo", 3) {
            assert_eq!(view.rgb(), image.as_raw().as_slice());
        }
    }

    #[test]
    fn flips_mirror_and_jitter_keeps_grey_grey() {
        let mut image = gradient(224, 224);
        let flipped = imageops::flip_horizontal(&image);
        let config = AugmentConfig::new()
            .with_min_area(1.0)
            .with_max_aspect(1.0)
            .with_jitter(0.0)
            .with_views(8);
        let views = config.views_of(&image, "photo", 3);
        assert!(views.iter().any(|v| v.rgb() == flipped.as_raw().as_slice()));
        assert!(views.iter().any(|v| v.rgb() == image.as_raw().as_slice()));

        image.pixels_mut().for_each(|p| p.0 = [100, 100, 100]);
        jitter(&mut image, 1.2, 0.8, 0.5);
        assert!(image.pixels().all(|p| p.0 == [120, 120, 120]));
    }

    #[test]
    fn crops_fit_inside_tiny_and_odd_photos() {
        let config = AugmentConfig::new();
        for (w, h) in [(16, 16), (17, 300), (300, 17), (1, 1)] {
            let mut rng = StdRng::seed_from_u64(1);
            for _ in 0..100 {
                let (x, y, cw, ch) = config.crop_box(w, h, &mut rng);
                assert!(cw >= 1 && ch >= 1 && x + cw <= w && y + ch <= h);
            }
        }
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(check(&AugmentConfig::new()).is_ok());
        assert!(check(&AugmentConfig::new().with_views(0)).is_err());
        assert!(check(&AugmentConfig::new().with_min_area(0.0)).is_err());
        assert!(check(&AugmentConfig::new().with_jitter(2.0)).is_err());
    }
}
