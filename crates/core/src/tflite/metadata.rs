//! TFLite model metadata (the `TFLITE_METADATA` buffer, schema `metadata_schema.fbs` of
//! tflite-support, identifier `M001`) for an image classifier: how pixels become the input and
//! which packed file names the output's classes. MediaPipe's image classifier refuses a float
//! model without the first and reports bare indices without the second.
//!
//! No crate carries bindings for this schema and only seven small tables are needed, so they
//! are written with the flatbuffers builder's table API; slot numbers follow the schema's
//! field order (a union takes two: its type, then its value).

use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, WIPOffset};

/// Name of the model metadata entry MediaPipe and LiteRT's metadata extractor look for.
pub const METADATA_NAME: &str = "TFLITE_METADATA";

/// What the metadata says about an image classifier.
#[derive(Debug, Clone)]
pub struct ClassifierMetadata<'a> {
    pub name: &'a str,
    pub description: &'a str,
    /// Input normalization `(p - mean) / std` of pixel values `p` in 0..=255.
    pub mean: f32,
    pub std: f32,
    /// Name of the label file packed in the zip appended to the model.
    pub labels_file: &'a str,
}

/// Slot of the `index`th field of a table (its offset in the vtable).
const fn slot(index: u16) -> u16 {
    4 + 2 * index
}

/// `ContentProperties.ImageProperties`, `ProcessUnitOptions.NormalizationOptions`.
const IMAGE_PROPERTIES: u8 = 2;
const NORMALIZATION_OPTIONS: u8 = 1;
/// `ColorSpaceType.RGB`, `AssociatedFileType.TENSOR_AXIS_LABELS`.
const RGB: i8 = 1;
const TENSOR_AXIS_LABELS: i8 = 2;

impl ClassifierMetadata<'_> {
    /// The `ModelMetadata` flatbuffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut fbb = FlatBufferBuilder::new();
        let input = self.input_tensor(&mut fbb);
        let output = self.output_tensor(&mut fbb);
        let inputs = fbb.create_vector(&[input]);
        let outputs = fbb.create_vector(&[output]);
        let subgraph = {
            let start = fbb.start_table();
            fbb.push_slot_always(slot(2), inputs);
            fbb.push_slot_always(slot(3), outputs);
            WIPOffset::<UnionWIPOffset>::new(fbb.end_table(start).value())
        };
        let subgraphs = fbb.create_vector(&[subgraph]);
        let name = fbb.create_string(self.name);
        let description = fbb.create_string(self.description);
        let version = fbb.create_string("1");
        let author = fbb.create_string("Afinar");
        let parser = fbb.create_string("1.0.0");
        let start = fbb.start_table();
        fbb.push_slot_always(slot(0), name);
        fbb.push_slot_always(slot(1), description);
        fbb.push_slot_always(slot(2), version);
        fbb.push_slot_always(slot(3), subgraphs);
        fbb.push_slot_always(slot(4), author);
        fbb.push_slot_always(slot(7), parser);
        let root = fbb.end_table(start);
        fbb.finish(root, Some("M001"));
        fbb.finished_data().to_vec()
    }

    /// `TensorMetadata` of the image: RGB, normalized by `mean` and `std`.
    fn input_tensor(&self, fbb: &mut FlatBufferBuilder) -> WIPOffset<UnionWIPOffset> {
        let image_properties = {
            let start = fbb.start_table();
            fbb.push_slot::<i8>(slot(0), RGB, 0);
            fbb.end_table(start)
        };
        let content = {
            let start = fbb.start_table();
            fbb.push_slot::<u8>(slot(0), IMAGE_PROPERTIES, 0);
            fbb.push_slot_always(slot(1), image_properties);
            fbb.end_table(start)
        };
        let mean = fbb.create_vector(&[self.mean]);
        let std = fbb.create_vector(&[self.std]);
        let normalization = {
            let start = fbb.start_table();
            fbb.push_slot_always(slot(0), mean);
            fbb.push_slot_always(slot(1), std);
            fbb.end_table(start)
        };
        let unit = {
            let start = fbb.start_table();
            fbb.push_slot::<u8>(slot(0), NORMALIZATION_OPTIONS, 0);
            fbb.push_slot_always(slot(1), normalization);
            fbb.end_table(start)
        };
        let units = fbb.create_vector(&[unit]);
        let name = fbb.create_string("image");
        let description = fbb.create_string("The photo, RGB, resized to 224 × 224.");
        let start = fbb.start_table();
        fbb.push_slot_always(slot(0), name);
        fbb.push_slot_always(slot(1), description);
        fbb.push_slot_always(slot(3), content);
        fbb.push_slot_always(slot(4), units);
        WIPOffset::new(fbb.end_table(start).value())
    }

    /// `TensorMetadata` of the probabilities, one per line of the label file.
    fn output_tensor(&self, fbb: &mut FlatBufferBuilder) -> WIPOffset<UnionWIPOffset> {
        let file_name = fbb.create_string(self.labels_file);
        let file_description = fbb.create_string("The classes, one per line, in output order.");
        let file = {
            let start = fbb.start_table();
            fbb.push_slot_always(slot(0), file_name);
            fbb.push_slot_always(slot(1), file_description);
            fbb.push_slot::<i8>(slot(2), TENSOR_AXIS_LABELS, 0);
            fbb.end_table(start)
        };
        let files = fbb.create_vector(&[file]);
        let name = fbb.create_string("probabilities");
        let description = fbb.create_string("Probability of each class.");
        let start = fbb.start_table();
        fbb.push_slot_always(slot(0), name);
        fbb.push_slot_always(slot(1), description);
        fbb.push_slot_always(slot(6), files);
        WIPOffset::new(fbb.end_table(start).value())
    }
}
