//! Photo bytes → the 224×224 RGB input of the network.
//!
//! Follows the reference recipe (`shared/models/reference/README.md`): decode, honour the EXIF
//! orientation, centre-crop to a square (floor offsets), resize to 224×224 with a triangle
//! (bilinear) filter that widens when shrinking (antialiased, as Pillow's BILINEAR), then scale
//! each pixel with the model's input quantization.

use std::io::Cursor;

use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};

use sha2::{Digest, Sha256};

use crate::architecture::INPUT_SIZE;

/// Largest image accepted, in pixels: a 64-megapixel photo decodes to 192 MiB of RGB.
pub const MAX_PIXELS: u64 = 64_000_000;
/// Smallest side accepted: below this there is nothing for the network to see.
pub const MIN_SIDE: u32 = 16;
/// Bytes of one preprocessed input: 224 × 224 × RGB.
pub const INPUT_BYTES: usize = INPUT_SIZE * INPUT_SIZE * 3;

/// Why a photo could not be turned into a model input. The messages are for people.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ImageInputError {
    #[error("the file is empty")]
    Empty,
    #[error("not an image Afinar can read (JPEG, PNG, WebP, GIF and BMP are supported)")]
    UnknownFormat,
    #[error(
        "the image is {width}×{height} pixels ({} megapixels); the limit is {} megapixels",
        (*width as u64 * *height as u64) / 1_000_000,
        MAX_PIXELS / 1_000_000
    )]
    TooLarge { width: u32, height: u32 },
    #[error("the image is only {width}×{height} pixels; at least {MIN_SIDE}×{MIN_SIDE} is needed")]
    TooSmall { width: u32, height: u32 },
    #[error("the image is damaged ({0})")]
    Corrupt(String),
    #[error("the image file is cut short (an incomplete download or copy?)")]
    Truncated,
    #[error("a raw input must be 224×224×3 = {INPUT_BYTES} bytes, got {0}")]
    RawSize(usize),
}

/// How a uint8 pixel maps to the real value the network expects: `scale * (p - zero_point)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputScaling {
    pub scale: f32,
    pub zero_point: f32,
}

impl InputScaling {
    /// The usual MobileNetV2 scaling `p / 127.5 - 1`, used for float32 files that say nothing.
    pub const MOBILENET: Self = Self {
        scale: 1.0 / 127.5,
        zero_point: 127.5,
    };

    /// How a photo becomes this model's input, in words: what a trained head's file records
    /// so that the head can be used again elsewhere.
    pub fn describe(&self) -> String {
        let round = |v: f32| (v * 1e4).round() / 1e4;
        format!(
            "centre crop to a square, resize to {INPUT_SIZE}x{INPUT_SIZE} (antialiased bilinear), \
             x = (p - {}) / {}",
            round(self.zero_point),
            round(1.0 / self.scale)
        )
    }
}

/// Lowercase hex sha256 of `bytes`: names a model file (the base of a trained head) and a
/// photo (the same photo in two classes).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lowercase hex of a digest.
pub fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// One preprocessed photo: 224×224 RGB pixels, row-major HWC, as the reference `.rgb` files.
#[derive(Clone, PartialEq, Eq)]
pub struct ModelInput {
    rgb: Vec<u8>,
}

impl std::fmt::Debug for ModelInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // 150,528 bytes of pixels help nobody in a test failure.
        write!(
            f,
            "ModelInput(224×224 RGB, sha256 {})",
            sha256_hex(&self.rgb)
        )
    }
}

impl ModelInput {
    /// Wraps raw 224×224×3 HWC bytes (a `.rgb` fixture).
    pub fn from_rgb(rgb: Vec<u8>) -> Result<Self, ImageInputError> {
        if rgb.len() == INPUT_BYTES {
            Ok(Self { rgb })
        } else {
            Err(ImageInputError::RawSize(rgb.len()))
        }
    }

    /// Decodes an image file's bytes and preprocesses it.
    pub fn from_image_bytes(bytes: &[u8]) -> Result<Self, ImageInputError> {
        Ok(Self::from_image(&decode(bytes)?))
    }

    /// Centre-crops to a square and resizes to 224×224.
    pub fn from_image(image: &DynamicImage) -> Self {
        Self::from_rgb_image(&image.to_rgb8())
    }

    /// [`Self::from_image`] for an image already in RGB.
    pub fn from_rgb_image(rgb: &RgbImage) -> Self {
        Self::from_input_image(crop_and_resize(rgb))
    }

    /// The 224×224 crop the model sees, as a small JPEG (empty if encoding fails).
    pub fn thumbnail_jpeg(&self) -> Vec<u8> {
        let mut jpeg = Vec::new();
        let size = INPUT_SIZE as u32;
        let encoded = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 82).encode(
            &self.rgb,
            size,
            size,
            image::ExtendedColorType::Rgb8,
        );
        if encoded.is_err() {
            jpeg.clear();
        }
        jpeg
    }

    /// Wraps an image that is already the network's input size (an augmented view).
    pub fn from_input_image(image: RgbImage) -> Self {
        let size = INPUT_SIZE as u32;
        debug_assert_eq!(image.dimensions(), (size, size));
        Self {
            rgb: image.into_raw(),
        }
    }

    /// The 224×224×3 HWC pixels.
    pub fn rgb(&self) -> &[u8] {
        &self.rgb
    }

    /// The pixels as the network's real-valued input, in their own (NHWC) order: `out` holds
    /// 224 × 224 × 3 values.
    pub fn scale_into(&self, scaling: InputScaling, out: &mut [f32]) {
        for (o, &p) in out.iter_mut().zip(&self.rgb) {
            *o = scaling.scale * (f32::from(p) - scaling.zero_point);
        }
    }
}

/// Decodes JPEG, PNG, WebP, GIF (first frame) or BMP, upright per its EXIF orientation.
/// The size is checked from the header, before any pixel buffer is allocated.
pub fn decode(bytes: &[u8]) -> Result<DynamicImage, ImageInputError> {
    if bytes.is_empty() {
        return Err(ImageInputError::Empty);
    }
    let corrupt = |e: image::ImageError| match e {
        image::ImageError::Unsupported(_) => ImageInputError::UnknownFormat,
        image::ImageError::Limits(_) => ImageInputError::Corrupt(e.to_string()),
        e => ImageInputError::Corrupt(e.to_string()),
    };
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageInputError::Corrupt(e.to_string()))?;
    let format = reader.format().ok_or(ImageInputError::UnknownFormat)?;
    if format == ImageFormat::Jpeg && jpeg_is_cut_short(bytes) {
        return Err(ImageInputError::Truncated);
    }
    let mut limits = Limits::default();
    // Room for the decoded image plus the decoder's own buffers.
    limits.max_alloc = Some(MAX_PIXELS * 4 * 2);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ImageInputError::TooLarge { width, height });
    }
    if width.min(height) < MIN_SIDE {
        return Err(ImageInputError::TooSmall { width, height });
    }
    // A broken EXIF block should not cost the user the photo: fall back to "as stored".
    let orientation = decoder.orientation().ok();
    let mut image = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    Ok(image)
}

/// Whether a JPEG stops before its end-of-image marker. The decoder fills what is missing with
/// grey without an error, so a half-downloaded photo would be classified as if it were whole.
///
/// Walks the header segments (marker `FF xx` + 2-byte length, JPEG spec B.1.1.4) to the first
/// start-of-scan, then looks for the end-of-image marker `FF D9` after it; inside scan data a
/// literal `FF` byte is always stuffed as `FF 00`, so `FF D9` there can only be the real end.
/// Anything the walk does not understand is left to the decoder (answers `false`).
fn jpeg_is_cut_short(bytes: &[u8]) -> bool {
    const START_OF_SCAN: u8 = 0xDA;
    let mut at = 2; // after the start-of-image marker
    loop {
        let Some(&[marker_start, marker, len_hi, len_lo]) = bytes.get(at..at + 4) else {
            return true; // the headers themselves run out
        };
        if marker_start != 0xFF {
            return false;
        }
        if marker == 0xFF {
            at += 1; // fill byte before a marker
            continue;
        }
        let next = at + 2 + usize::from(u16::from_be_bytes([len_hi, len_lo]));
        if marker == START_OF_SCAN {
            let scan = bytes.get(next..).unwrap_or_default();
            return !scan.windows(2).any(|w| w == [0xFF, 0xD9]);
        }
        at = next;
    }
}

/// The reference crop box and resize: square of side `min(w, h)` at floor-centred offsets,
/// then 224×224 with a triangle filter (antialiased when shrinking).
fn crop_and_resize(rgb: &RgbImage) -> RgbImage {
    let (width, height) = rgb.dimensions();
    let side = width.min(height);
    let square = imageops::crop_imm(rgb, (width - side) / 2, (height - side) / 2, side, side);
    let size = INPUT_SIZE as u32;
    imageops::resize(&*square, size, size, FilterType::Triangle)
}
