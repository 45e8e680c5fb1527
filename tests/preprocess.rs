//! Decoding and resizing follow the reference recipe (Pillow BILINEAR, centre crop).

mod common;

use afinar::preprocess::decode;
use afinar::{Classifier, ModelInput, top_k};
use common::{V1_QUANT, model_bytes, references};
use image::{ImageFormat, Rgb, RgbImage};

/// Measured on the six reference JPEGs (zune-jpeg and `image`'s f32 resampler against
/// libjpeg-turbo and Pillow's fixed-point one); see the test's printed figures.
const MAX_PIXEL_DIFF: u8 = 4;
const MEAN_PIXEL_DIFF: f64 = 0.25;

#[test]
fn reference_jpegs_preprocess_like_pillow_and_keep_their_top1() {
    let refs: Vec<_> = references()
        .into_iter()
        .filter(|(_, r)| r.is_jpeg())
        .collect();
    assert_eq!(refs.len(), 6);
    let mut ours = Vec::new();
    for (name, r) in &refs {
        let bytes = std::fs::read(r.image_path()).expect("photo");
        let input = ModelInput::from_image_bytes(&bytes).expect("decodes");
        let want = r.input();
        let diffs: Vec<u8> = input
            .rgb()
            .iter()
            .zip(want.rgb())
            .map(|(a, b)| a.abs_diff(*b))
            .collect();
        let max = diffs.iter().copied().max().unwrap_or(0);
        let mean = diffs.iter().map(|&d| f64::from(d)).sum::<f64>() / diffs.len() as f64;
        let off = diffs.iter().filter(|&&d| d > 1).count() as f64 / diffs.len() as f64;
        println!(
            "{name}: max |Δpixel| {max}, mean {mean:.3}, {:.2}% of values off by more than 1",
            off * 100.0
        );
        assert!(max <= MAX_PIXEL_DIFF, "{name}: max pixel difference {max}");
        assert!(
            mean <= MEAN_PIXEL_DIFF,
            "{name}: mean pixel difference {mean}"
        );
        ours.push(input);
    }
    let classifier = Classifier::from_tflite(&model_bytes(V1_QUANT), None, &afinar::device::cpu())
        .expect("model");
    let probs = futures_lite::future::block_on(classifier.probabilities(&ours)).expect("probs");
    for ((name, r), row) in refs.iter().zip(&probs) {
        let (top1, p) = top_k(row, 1)[0];
        let dp = common::max_abs_diff(row, &r.probs);
        println!(
            "{name}: top-1 {top1} ({p:.4}), reference {} ({:.4}), max |Δprob| {dp:.4}",
            r.top1(),
            r.top5[0].2
        );
        assert_eq!(top1, r.top1(), "{name}: top-1 changed by preprocessing");
    }
}

fn encode(image: &RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, format).expect("encode");
    bytes.into_inner()
}

/// A 300×200 test card: horizontal and vertical gradients, so crop and resize errors show.
fn test_card() -> RgbImage {
    RgbImage::from_fn(300, 200, |x, y| {
        Rgb([(x * 255 / 299) as u8, (y * 255 / 199) as u8, 128])
    })
}

#[test]
fn lossless_formats_give_the_same_input_as_the_pixels() {
    let card = test_card();
    let expected = ModelInput::from_image(&card.clone().into());
    for format in [ImageFormat::Png, ImageFormat::Bmp, ImageFormat::WebP] {
        let input = ModelInput::from_image_bytes(&encode(&card, format)).expect("decodes");
        assert_eq!(input, expected, "{format:?}");
    }
}

#[test]
fn centre_crop_keeps_the_middle_square() {
    // The 300×200 card crops to x in 50..250: the first column of the input is x = 50.
    let input = ModelInput::from_image(&test_card().into());
    let red_first = input.rgb()[0];
    let red_last = input.rgb()[3 * 223];
    assert!(
        (i32::from(red_first) - 50 * 255 / 299).abs() <= 2,
        "{red_first}"
    );
    assert!(
        (i32::from(red_last) - 249 * 255 / 299).abs() <= 2,
        "{red_last}"
    );
}

#[test]
fn jpeg_and_gif_decode_and_gif_takes_the_first_frame() {
    let jpeg = encode(&test_card(), ImageFormat::Jpeg);
    assert_eq!(decode(&jpeg).expect("jpeg").width(), 300);

    let mut gif = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new(&mut gif);
        for colour in [[200u8, 30, 30, 255], [30, 30, 200, 255]] {
            let frame = image::RgbaImage::from_pixel(40, 40, image::Rgba(colour));
            encoder
                .encode_frame(image::Frame::new(frame))
                .expect("frame");
        }
    }
    let first = decode(&gif).expect("gif").to_rgb8();
    let Rgb([r, _, b]) = *first.get_pixel(20, 20);
    assert!(r > 150 && b < 80, "first frame is red, got {r},{b}");
}

/// A JPEG with an EXIF APP1 segment that says "rotate 90° clockwise to display".
fn jpeg_with_orientation(image: &RgbImage, orientation: u16) -> Vec<u8> {
    let jpeg = encode(image, ImageFormat::Jpeg);
    let mut tiff = b"MM\x00\x2a\x00\x00\x00\x08".to_vec();
    tiff.extend(1u16.to_be_bytes()); // one IFD entry
    tiff.extend(0x0112u16.to_be_bytes()); // Orientation
    tiff.extend(3u16.to_be_bytes()); // SHORT
    tiff.extend(1u32.to_be_bytes());
    tiff.extend(orientation.to_be_bytes());
    tiff.extend([0, 0]);
    tiff.extend(0u32.to_be_bytes()); // no next IFD
    let mut app1 = b"Exif\x00\x00".to_vec();
    app1.extend(tiff);
    let mut out = jpeg[..2].to_vec(); // SOI
    out.extend([0xff, 0xe1]);
    out.extend(((app1.len() + 2) as u16).to_be_bytes());
    out.extend(app1);
    out.extend(&jpeg[2..]);
    out
}

#[test]
fn exif_orientation_is_honoured() {
    // 64×32, red on the left, blue on the right; rotated 90° clockwise red is on top.
    let image = RgbImage::from_fn(64, 32, |x, _| {
        if x < 32 {
            Rgb([220, 20, 20])
        } else {
            Rgb([20, 20, 220])
        }
    });
    let upright = decode(&jpeg_with_orientation(&image, 6))
        .expect("decodes")
        .to_rgb8();
    assert_eq!(upright.dimensions(), (32, 64));
    let Rgb([r_top, _, b_top]) = *upright.get_pixel(16, 8);
    let Rgb([r_bottom, _, b_bottom]) = *upright.get_pixel(16, 56);
    assert!(
        r_top > 150 && b_top < 100,
        "top should be red: {r_top},{b_top}"
    );
    assert!(
        b_bottom > 150 && r_bottom < 100,
        "bottom should be blue: {r_bottom},{b_bottom}"
    );
    // Orientation 1 leaves it as stored.
    assert_eq!(
        decode(&jpeg_with_orientation(&image, 1))
            .expect("decodes")
            .width(),
        64
    );
}
