//! A model's parameters, or their gradients, as one vector of floats in the module's order: what
//! workers training together send each other ([`super::peers`]).

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;

use super::labelled::TrainError;

/// The gradients of every float parameter of `model`, in the module's order, as one vector
/// (zeros for a parameter without one, as for a worker that held no row of the batch).
pub(crate) async fn flat_gradients<M: Module>(
    model: &M,
    grads: Option<&GradientsParams>,
    device: &Device,
) -> Result<Vec<f32>, TrainError> {
    struct Gather<'a> {
        grads: Option<&'a GradientsParams>,
        parts: Vec<Tensor<1>>,
        device: &'a Device,
    }
    impl ModuleVisitor for Gather<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let n = param.shape().num_elements();
            let grad = self.grads.and_then(|g| g.get::<D>(param.id));
            self.parts.push(match grad {
                Some(grad) => grad.reshape([n]),
                None => Tensor::zeros([n], self.device),
            });
        }
    }
    let mut gather = Gather {
        grads,
        parts: Vec::new(),
        device,
    };
    model.visit(&mut gather);
    read_all(gather.parts).await
}

/// Every float parameter of `model`, in the module's order, as one vector.
pub(crate) async fn flat_weights<M: Module>(model: &M) -> Result<Vec<f32>, TrainError> {
    struct Gather(Vec<Tensor<1>>);
    impl ModuleVisitor for Gather {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let n = param.shape().num_elements();
            self.0.push(param.val().reshape([n]));
        }
    }
    let mut gather = Gather(Vec::new());
    model.visit(&mut gather);
    read_all(gather.0).await
}

async fn read_all(parts: Vec<Tensor<1>>) -> Result<Vec<f32>, TrainError> {
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    Tensor::cat(parts, 0)
        .into_data_async()
        .await
        .map_err(|e| TrainError::Device(e.to_string()))?
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| TrainError::Device(format!("{e:?}")))
}

/// Gradients for every float parameter of `model` from [`flat_gradients`]'s vector.
pub(crate) fn gradients_from_flat<M: Module>(
    model: &M,
    flat: &[f32],
    device: &Device,
) -> GradientsParams {
    struct Scatter<'a> {
        flat: &'a [f32],
        at: usize,
        device: &'a Device,
        grads: GradientsParams,
    }
    impl ModuleVisitor for Scatter<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let shape = param.shape();
            let n = shape.num_elements();
            let values = self.flat.get(self.at..self.at + n).unwrap_or_default();
            self.at += n;
            if values.len() == n {
                let data = TensorData::new(values.to_vec(), shape);
                self.grads
                    .register::<D>(param.id, Tensor::from_data(data, self.device));
            }
        }
    }
    let mut scatter = Scatter {
        flat,
        at: 0,
        device,
        grads: GradientsParams::new(),
    };
    model.visit(&mut scatter);
    scatter.grads
}

/// `model` with every float parameter read from [`flat_weights`]'s vector; `None` when the
/// vector does not fit the model.
pub(crate) fn with_weights<M: Module>(model: M, flat: &[f32]) -> Option<M> {
    struct Load<'a> {
        flat: &'a [f32],
        at: usize,
        fits: bool,
    }
    impl ModuleMapper for Load<'_> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let shape = param.shape();
            let n = shape.num_elements();
            let Some(values) = self.flat.get(self.at..self.at + n) else {
                self.fits = false;
                return param;
            };
            self.at += n;
            param.map(|t| Tensor::from_data(TensorData::new(values.to_vec(), shape), &t.device()))
        }
    }
    let mut load = Load {
        flat,
        at: 0,
        fits: true,
    };
    let model = model.map(&mut load);
    (load.fits && load.at == flat.len()).then_some(model)
}

/// Moves the gradients of `module`'s parameters out of `grads`.
pub(crate) fn take_gradients<M: Module>(
    grads: &mut GradientsParams,
    module: &M,
) -> GradientsParams {
    struct Take<'a> {
        from: &'a mut GradientsParams,
        to: GradientsParams,
    }
    impl ModuleVisitor for Take<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(grad) = self.from.remove::<D>(param.id) {
                self.to.register::<D>(param.id, grad);
            }
        }
    }
    let mut take = Take {
        from: grads,
        to: GradientsParams::new(),
    };
    module.visit(&mut take);
    take.to
}
