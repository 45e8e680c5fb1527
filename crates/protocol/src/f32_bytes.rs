//! `Vec<f32>` as little-endian bytes: one `Uint8Array` in JS instead of an array of numbers,
//! which serde-wasm-bindgen reads back element by element (seconds for a training set).
//! On little-endian machines (wasm32 among them) the values' memory is those bytes already, so
//! a training set's gigabyte is copied once each way, not rebuilt value by value.

use serde::{Deserialize, Deserializer, Serializer};

pub fn serialize<S: Serializer>(values: &[f32], s: S) -> Result<S::Ok, S::Error> {
    if cfg!(target_endian = "little") {
        serde_bytes::serialize(bytemuck::cast_slice::<f32, u8>(values), s)
    } else {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        serde_bytes::serialize(&bytes, s)
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
    Ok(from_bytes(&serde_bytes::ByteBuf::deserialize(d)?))
}

/// The values of `bytes`; bytes after the last whole value are left out.
fn from_bytes(bytes: &[u8]) -> Vec<f32> {
    let whole = &bytes[..bytes.len() / 4 * 4];
    if cfg!(target_endian = "little") {
        // A copy: the bytes need not be aligned for f32.
        bytemuck::pod_collect_to_vec(whole)
    } else {
        whole
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }
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

#[cfg(test)]
mod tests {
    #[test]
    fn values_go_as_their_little_endian_bytes_and_come_back_whole() {
        let values = [1.0f32, -2.5, f32::MIN_POSITIVE, 3.0e38];
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut s = serde_json::Serializer::new(Vec::new());
        super::serialize(&values, &mut s).expect("serializes");
        let written: Vec<u8> = serde_json::from_slice(&s.into_inner()).expect("bytes");
        assert_eq!(written, bytes);
        assert_eq!(super::from_bytes(&bytes), values);
        // Unaligned, with a stray byte at the end.
        let mut shifted = vec![0u8];
        shifted.extend(&bytes);
        shifted.push(9);
        assert_eq!(super::from_bytes(&shifted[1..]), values);
    }
}
