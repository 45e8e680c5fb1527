//! Bad model files and bad photos give clear errors, never a panic.

mod common;

use afinar::{ImageInputError, MobileNetV2Weights, ModelError, ModelInput};
use common::{V1_QUANT, model_bytes, shared_dir};
use image::{ImageFormat, RgbImage};

fn encode(image: &RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, format).expect("encode");
    bytes.into_inner()
}

fn flower_jpeg() -> Vec<u8> {
    std::fs::read(shared_dir().join("data/flower_photos/daisy/100080576_f52e8ee070_n.jpg"))
        .expect("daisy photo")
}

// ---- model files ----

#[test]
fn an_empty_model_file_is_refused() {
    assert_eq!(
        MobileNetV2Weights::from_tflite(&[]).unwrap_err(),
        ModelError::Empty
    );
}

#[test]
fn random_bytes_are_not_a_model() {
    // A fixed xorshift stream: the test is the same on every run.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let bytes: Vec<u8> = (0..100_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let err = MobileNetV2Weights::from_tflite(&bytes).unwrap_err();
    assert_eq!(err, ModelError::NotTflite, "{err}");
}

#[test]
fn a_png_renamed_tflite_is_not_a_model() {
    let png = encode(&RgbImage::new(32, 32), ImageFormat::Png);
    let err = MobileNetV2Weights::from_tflite(&png).unwrap_err();
    assert_eq!(err, ModelError::NotTflite);
    assert!(err.to_string().contains("not a TFLite model"));
}

#[test]
fn a_truncated_model_is_refused_at_every_cut() {
    let bytes = model_bytes(V1_QUANT);
    for cut in [
        9,
        100,
        4096,
        bytes.len() / 3,
        bytes.len() / 2,
        bytes.len() - 200_000,
    ] {
        let err = MobileNetV2Weights::from_tflite(&bytes[..cut]).unwrap_err();
        assert!(
            matches!(err, ModelError::Corrupt(_) | ModelError::NotTflite),
            "cut at {cut}: {err}"
        );
    }
}

#[test]
fn a_model_of_another_shape_is_refused() {
    // Rewrite the stem's weight shape [32, 3, 3, 3] to [32, 1, 9, 3] in a copy of the file:
    // same number of weights, so only the architecture check can catch it.
    let mut bytes = model_bytes(V1_QUANT);
    let offset = {
        let model = afinar_tflite_schema::tflite::root_as_model(&bytes).expect("valid");
        let graph = model.subgraphs().expect("subgraphs").get(0);
        let stem = graph.operators().expect("ops").get(0);
        let weight = graph
            .tensors()
            .expect("tensors")
            .get(stem.inputs().expect("inputs").get(1) as usize);
        let shape = weight.shape().expect("shape");
        assert_eq!(shape.iter().collect::<Vec<_>>(), [32, 3, 3, 3]);
        shape.bytes().as_ptr() as usize - bytes.as_ptr() as usize
    };
    for (i, dim) in [32i32, 1, 9, 3].into_iter().enumerate() {
        bytes[offset + 4 * i..offset + 4 * i + 4].copy_from_slice(&dim.to_le_bytes());
    }
    let err = MobileNetV2Weights::from_tflite(&bytes).unwrap_err();
    assert!(matches!(err, ModelError::WrongArchitecture(_)), "{err}");
    assert!(err.to_string().contains("convolution 0"), "{err}");
    assert!(err.to_string().contains("[32, 1, 9, 3]"), "{err}");
}

// ---- photos ----

#[test]
fn an_empty_photo_is_refused() {
    assert_eq!(
        ModelInput::from_image_bytes(&[]).unwrap_err(),
        ImageInputError::Empty
    );
}

#[test]
fn a_text_file_named_jpg_is_not_an_image() {
    let err =
        ModelInput::from_image_bytes(b"These are my holiday notes, not a photo.\n").unwrap_err();
    assert_eq!(err, ImageInputError::UnknownFormat);
    assert!(err.to_string().contains("not an image"));
}

#[test]
fn a_truncated_jpeg_is_refused() {
    let jpeg = flower_jpeg();
    for cut in [3, 200, jpeg.len() / 2, jpeg.len() - 10] {
        let err = ModelInput::from_image_bytes(&jpeg[..cut]).unwrap_err();
        assert!(
            matches!(
                err,
                ImageInputError::Truncated | ImageInputError::Corrupt(_)
            ),
            "cut at {cut}: {err}"
        );
    }
}

#[test]
fn a_one_pixel_image_is_refused() {
    let png = encode(&RgbImage::new(1, 1), ImageFormat::Png);
    let err = ModelInput::from_image_bytes(&png).unwrap_err();
    assert_eq!(
        err,
        ImageInputError::TooSmall {
            width: 1,
            height: 1
        }
    );
}

fn png_chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    let mut body = kind.to_vec();
    body.extend(data);
    png.extend((data.len() as u32).to_be_bytes());
    png.extend(&body);
    png.extend(crc32fast::hash(&body).to_be_bytes());
}

/// A PNG that declares `width`×`height` and carries a few bytes of (incomplete) pixel data:
/// the shape of a decompression bomb, where a tiny file inflates to gigabytes.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no filter, no interlace
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png_chunk(&mut png, b"IHDR", &ihdr);
    png_chunk(&mut png, b"IDAT", &[0x78, 0x9c, 0x62, 0x60, 0x00]);
    png
}

#[test]
fn a_decompression_bomb_is_refused_from_its_header() {
    let err = ModelInput::from_image_bytes(&png_header(20_000, 20_000)).unwrap_err();
    assert_eq!(
        err,
        ImageInputError::TooLarge {
            width: 20_000,
            height: 20_000
        }
    );
    assert_eq!(
        err.to_string(),
        "the image is 20000×20000 pixels (400 megapixels); the limit is 64 megapixels"
    );
}

#[test]
fn a_header_without_pixels_is_corrupt() {
    let err = ModelInput::from_image_bytes(&png_header(640, 480)).unwrap_err();
    assert!(matches!(err, ImageInputError::Corrupt(_)), "{err}");
}

#[test]
fn a_raw_input_of_the_wrong_size_is_refused() {
    assert_eq!(
        ModelInput::from_rgb(vec![0; 10]).unwrap_err(),
        ImageInputError::RawSize(10)
    );
}

// ---- requests a page or a file can make ----

#[test]
fn a_request_for_more_rows_than_any_recipe_is_refused_by_field() {
    use afinar_vocabulary::RowsNeeded;
    let fine = RowsNeeded {
        unfreeze: Some(17),
        views: 16,
        seed: 1,
    };
    assert_eq!(fine.check(), Ok(()));
    let views = RowsNeeded {
        views: 100_000,
        ..fine
    };
    assert!(
        views
            .check()
            .unwrap_err()
            .contains("100000 augmented views")
    );
    for k in [0, 18, usize::MAX] {
        let unfreeze = RowsNeeded {
            unfreeze: Some(k),
            ..fine
        };
        assert!(
            unfreeze.check().unwrap_err().contains("unfrozen blocks"),
            "{k}"
        );
    }
}
