//! `Vec<f32>` as little-endian bytes: one `Uint8Array` in JS instead of an array of numbers,
//! which serde-wasm-bindgen reads back element by element (seconds for a training set).

use serde::{Deserialize, Deserializer, Serializer};

pub fn serialize<S: Serializer>(values: &[f32], s: S) -> Result<S::Ok, S::Error> {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    serde_bytes::serialize(&bytes, s)
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
    Ok(from_bytes(&serde_bytes::ByteBuf::deserialize(d)?))
}

fn from_bytes(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The same for `Option<Vec<f32>>`.
pub mod option {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(values: &Option<Vec<f32>>, s: S) -> Result<S::Ok, S::Error> {
        match values {
            Some(values) => super::serialize(values, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<f32>>, D::Error> {
        let bytes = Option::<serde_bytes::ByteBuf>::deserialize(d)?;
        Ok(bytes.map(|bytes| super::from_bytes(&bytes)))
    }
}
