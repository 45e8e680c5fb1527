//! Applies an [`Edit`] to a [`Graph`] before it is written.

use afinar_tflite_schema::tflite;

use super::{Edit, Graph, Kind, MAX_EDIT_LEN, Quantization};

impl Graph {
    pub(super) fn apply(&mut self, edit: &Edit) {
        let tensors = self.tensors.len();
        let ops = self.ops.len();
        let conv = |i: u8| usize::from(i) % self.backbone.max(1);
        let bounded = |v: &[i32]| v.iter().copied().take(8).collect::<Vec<_>>();
        match edit {
            Edit::Adds(n) => self.adds = usize::from(*n % 32),
            Edit::ValidPadding => self.padding = tflite::Padding::VALID,
            Edit::Stride { conv: i, stride } => {
                let i = conv(*i);
                self.ops[i].stride = *stride;
            }
            Edit::Kind { conv: i } => {
                let op = &mut self.ops[conv(*i)];
                op.kind = match op.kind {
                    Kind::Depthwise => Kind::Conv,
                    _ => Kind::Depthwise,
                };
            }
            Edit::DropConv { conv: i } => {
                if self.backbone > 0 {
                    let i = conv(*i);
                    // Its successor reads what it read.
                    let input = self.ops[i].inputs[0];
                    self.ops.remove(i);
                    if let Some(next) = self.ops.get_mut(i) {
                        next.inputs[0] = input;
                    }
                    self.backbone -= 1;
                }
            }
            Edit::Activation { op, code } => {
                self.ops[usize::from(*op) % ops].activation = tflite::ActivationFunctionType(*code)
            }
            Edit::Dilation { op, dilation } => {
                self.ops[usize::from(*op) % ops].dilation = *dilation
            }
            Edit::Shape { tensor, dims } => {
                self.tensors[usize::from(*tensor) % tensors].shape = bounded(dims)
            }
            Edit::Type { tensor, code } => {
                self.tensors[usize::from(*tensor) % tensors].ty = tflite::TensorType(*code)
            }
            Edit::Scales { tensor, scales } => {
                let q = self.quantization(usize::from(*tensor) % tensors);
                q.scales = scales.iter().copied().take(MAX_EDIT_LEN).collect();
            }
            Edit::ZeroPoints {
                tensor,
                zero_points,
            } => {
                let q = self.quantization(usize::from(*tensor) % tensors);
                q.zero_points = zero_points.iter().copied().take(MAX_EDIT_LEN).collect();
            }
            Edit::QuantizedDimension { tensor, dimension } => {
                self.quantization(usize::from(*tensor) % tensors).dimension = *dimension
            }
            Edit::NoQuantization { tensor } => {
                self.tensors[usize::from(*tensor) % tensors].quantization = None
            }
            Edit::Buffer { tensor, buffer } => {
                self.tensors[usize::from(*tensor) % tensors].buffer = Some(*buffer)
            }
            Edit::Resize { tensor, bytes } => {
                let data = self.tensors[usize::from(*tensor) % tensors]
                    .data
                    .get_or_insert_with(Vec::new);
                let len = *bytes as usize % (data.len() + 64);
                data.resize(len, 7);
            }
            Edit::Input { op, slot, tensor } => {
                let inputs = &mut self.ops[usize::from(*op) % ops].inputs;
                let slot = usize::from(*slot) % (inputs.len() + 1);
                match inputs.get_mut(slot) {
                    Some(input) => *input = *tensor,
                    None => inputs.truncate(1),
                }
            }
            Edit::Opcode { op, index } => self.ops[usize::from(*op) % ops].opcode = Some(*index),
        }
    }

    /// A tensor's quantization, made when it has none.
    fn quantization(&mut self, tensor: usize) -> &mut Quantization {
        self.tensors[tensor]
            .quantization
            .get_or_insert_with(|| Quantization {
                scales: vec![1.0],
                zero_points: vec![0],
                dimension: 0,
            })
    }
}
