//! A `.tflite` file under construction, with the TFLite schema bindings the reader uses: one
//! subgraph's tensors, operators and the buffers they point at, then the finished flatbuffer.

use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, WIPOffset};

use super::schema::tflite;

/// One subgraph under construction: tensors, operators and the buffers they point at.
pub(super) struct Graph<'b> {
    pub(super) fbb: FlatBufferBuilder<'b>,
    /// Buffer 0 is the empty one every activation points at (the schema's convention).
    buffers: Vec<WIPOffset<tflite::Buffer<'b>>>,
    tensors: Vec<WIPOffset<tflite::Tensor<'b>>>,
    operators: Vec<WIPOffset<tflite::Operator<'b>>>,
    /// Operator codes with their versions, in `opcode_index` order.
    codes: Vec<(tflite::BuiltinOperator, i32)>,
}

impl<'b> Graph<'b> {
    pub(super) fn new() -> Self {
        let mut fbb = FlatBufferBuilder::new();
        let empty = tflite::Buffer::create(&mut fbb, &Default::default());
        Self {
            fbb,
            buffers: vec![empty],
            tensors: Vec::new(),
            operators: Vec::new(),
            codes: Vec::new(),
        }
    }

    fn tensor(
        &mut self,
        name: &str,
        shape: &[usize],
        type_: tflite::TensorType,
        data: Option<&[u8]>,
    ) -> i32 {
        let buffer = data.map_or(0, |bytes| self.buffer(bytes));
        let dims: Vec<i32> = shape.iter().map(|&d| d as i32).collect();
        self.push_tensor(name, &dims, type_, buffer, None)
    }

    /// Appends a tensor whose buffer (0: none) and quantization are already written: its index.
    pub(super) fn push_tensor(
        &mut self,
        name: &str,
        dims: &[i32],
        type_: tflite::TensorType,
        buffer: u32,
        quantization: Option<WIPOffset<tflite::QuantizationParameters<'b>>>,
    ) -> i32 {
        let shape = self.fbb.create_vector(dims);
        let name = self.fbb.create_string(name);
        let tensor = tflite::Tensor::create(
            &mut self.fbb,
            &tflite::TensorArgs {
                shape: Some(shape),
                type_,
                buffer,
                name: Some(name),
                quantization,
                ..Default::default()
            },
        );
        self.tensors.push(tensor);
        (self.tensors.len() - 1) as i32
    }

    /// A new buffer holding `bytes`: its index.
    pub(super) fn buffer(&mut self, bytes: &[u8]) -> u32 {
        let data = self.fbb.create_vector(bytes);
        let buffer =
            tflite::Buffer::create(&mut self.fbb, &tflite::BufferArgs { data: Some(data) });
        self.buffers.push(buffer);
        (self.buffers.len() - 1) as u32
    }

    /// A tensor computed by an operator.
    pub(super) fn activation(&mut self, name: &str, shape: &[usize]) -> i32 {
        self.tensor(name, shape, tflite::TensorType::FLOAT32, None)
    }

    pub(super) fn constant_f32(&mut self, name: &str, shape: &[usize], values: &[f32]) -> i32 {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensor(name, shape, tflite::TensorType::FLOAT32, Some(&bytes))
    }

    pub(super) fn constant_i32(&mut self, name: &str, shape: &[usize], values: &[i32]) -> i32 {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensor(name, shape, tflite::TensorType::INT32, Some(&bytes))
    }

    /// Appends an operator (version 1 of `code`) with its options, if it has any.
    pub(super) fn op(
        &mut self,
        code: tflite::BuiltinOperator,
        inputs: &[i32],
        outputs: &[i32],
        options: Option<(tflite::BuiltinOptions, WIPOffset<UnionWIPOffset>)>,
    ) {
        self.op_version(code, 1, inputs, outputs, options);
    }

    pub(super) fn op_version(
        &mut self,
        code: tflite::BuiltinOperator,
        version: i32,
        inputs: &[i32],
        outputs: &[i32],
        options: Option<(tflite::BuiltinOptions, WIPOffset<UnionWIPOffset>)>,
    ) {
        let opcode_index = match self.codes.iter().position(|c| *c == (code, version)) {
            Some(i) => i,
            None => {
                self.codes.push((code, version));
                self.codes.len() - 1
            }
        };
        let inputs = self.fbb.create_vector(inputs);
        let outputs = self.fbb.create_vector(outputs);
        let (builtin_options_type, builtin_options) = match options {
            Some((kind, table)) => (kind, Some(table)),
            None => (tflite::BuiltinOptions::NONE, None),
        };
        let op = tflite::Operator::create(
            &mut self.fbb,
            &tflite::OperatorArgs {
                opcode_index: opcode_index as u32,
                inputs: Some(inputs),
                outputs: Some(outputs),
                builtin_options_type,
                builtin_options,
                ..Default::default()
            },
        );
        self.operators.push(op);
    }

    pub(super) fn finish(
        mut self,
        inputs: &[i32],
        outputs: &[i32],
        description: &str,
        metadata: Option<&[u8]>,
    ) -> Vec<u8> {
        let metadata = metadata.map(|bytes| {
            let buffer = self.buffer(bytes);
            let name = self.fbb.create_string(super::metadata::METADATA_NAME);
            let entry = tflite::Metadata::create(
                &mut self.fbb,
                &tflite::MetadataArgs {
                    name: Some(name),
                    buffer,
                },
            );
            self.fbb.create_vector(&[entry])
        });
        let fbb = &mut self.fbb;
        let tensors = fbb.create_vector(&self.tensors);
        let operators = fbb.create_vector(&self.operators);
        let inputs = fbb.create_vector(inputs);
        let outputs = fbb.create_vector(outputs);
        let name = fbb.create_string("main");
        let subgraph = tflite::SubGraph::create(
            fbb,
            &tflite::SubGraphArgs {
                tensors: Some(tensors),
                inputs: Some(inputs),
                outputs: Some(outputs),
                operators: Some(operators),
                name: Some(name),
            },
        );
        let codes: Vec<_> = self
            .codes
            .iter()
            .map(|&(code, version)| {
                tflite::OperatorCode::create(
                    fbb,
                    &tflite::OperatorCodeArgs {
                        // Codes past 127 live only in `builtin_code`; the deprecated field
                        // takes PLACEHOLDER_FOR_GREATER_OP_CODES then.
                        deprecated_builtin_code: i8::try_from(code.0).unwrap_or(127),
                        custom_code: None,
                        version,
                        builtin_code: code,
                    },
                )
            })
            .collect();
        let codes = fbb.create_vector(&codes);
        let subgraphs = fbb.create_vector(&[subgraph]);
        let buffers = fbb.create_vector(&self.buffers);
        let description = fbb.create_string(description);
        let model = tflite::Model::create(
            fbb,
            &tflite::ModelArgs {
                version: 3,
                operator_codes: Some(codes),
                subgraphs: Some(subgraphs),
                description: Some(description),
                buffers: Some(buffers),
                metadata,
                ..Default::default()
            },
        );
        fbb.finish(model, Some("TFL3"));
        fbb.finished_data().to_vec()
    }
}
