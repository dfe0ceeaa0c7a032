//! The policy: a Qwen2 transformer, its tokenizer, its trainable weights and the detached
//! view of them that the sampler uses.
pub mod checkpoint;
pub mod config;
pub mod cpu;
pub mod device;
pub mod generator;
pub mod gguf;
pub mod hf_tokenizer;
pub mod model;
pub mod sampler;
pub mod server;
pub mod tokenizer;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand::SeedableRng;

pub use config::PolicyConfig;
pub use generator::Generator;
pub use model::{KvCache, Qwen2};
pub use tokenizer::{CharTokenizer, Tokenizer};

/// Trainable weights plus everything needed to run them.
pub struct Policy {
    pub config: PolicyConfig,
    pub tokenizer: Tokenizer,
    varmap: VarMap,
    device: Device,
}

impl Policy {
    /// A freshly initialised policy, deterministic for `seed`: embeddings and projections
    /// N(0, 0.02), norms 1, biases 0 (candle cannot seed its CPU generator, so arbor
    /// draws the initial values itself).
    pub fn init(
        config: PolicyConfig,
        tokenizer: Tokenizer,
        seed: u64,
        device: &Device,
    ) -> candle_core::Result<Self> {
        if let Err(e) = config.validate() {
            candle_core::bail!("invalid policy config: {e}");
        }
        let varmap = VarMap::new();
        // Creating the model on a VarMap-backed builder registers every parameter.
        Qwen2::new(
            &config,
            VarBuilder::from_varmap(&varmap, DType::F32, device),
        )?;
        let policy = Self {
            config,
            tokenizer,
            varmap,
            device: device.clone(),
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        for (name, var) in policy.vars() {
            let n = var.elem_count();
            let values: Vec<f32> = if name.ends_with("norm.weight") {
                vec![1.0; n]
            } else if name.ends_with(".bias") {
                vec![0.0; n]
            } else {
                (0..n).map(|_| 0.02 * standard_normal(&mut rng)).collect()
            };
            var.set(&Tensor::from_vec(values, var.shape(), device)?)?;
        }
        Ok(policy)
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Gives the policy a freshly initialised value head (`tree_distill`), deterministic
    /// for `seed`; a policy that has one keeps it.
    pub fn add_value_head(&mut self, seed: u64) -> candle_core::Result<()> {
        if self.config.arbor_value_head {
            return Ok(());
        }
        self.config.arbor_value_head = true;
        // Building the model on the VarMap registers the head's parameters.
        Qwen2::new(
            &self.config,
            VarBuilder::from_varmap(&self.varmap, DType::F32, &self.device),
        )?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x7a1e_0000);
        for (name, var) in self.vars() {
            if !name.starts_with(model::VALUE_HEAD_PREFIX) {
                continue;
            }
            let n = var.elem_count();
            let values: Vec<f32> = if name.ends_with(".bias") {
                vec![0.0; n]
            } else {
                (0..n).map(|_| 0.02 * standard_normal(&mut rng)).collect()
            };
            var.set(&Tensor::from_vec(values, var.shape(), &self.device)?)?;
        }
        Ok(())
    }

    /// The language model on `tensors` (value head ignored), for a reference policy.
    pub fn reference_model(
        config: &PolicyConfig,
        tensors: std::collections::HashMap<String, Tensor>,
        device: &Device,
    ) -> candle_core::Result<Qwen2> {
        let mut cfg = config.clone();
        cfg.arbor_value_head = false;
        Qwen2::new(&cfg, VarBuilder::from_tensors(tensors, DType::F32, device))
    }

    /// Parameters by checkpoint name, in name order.
    pub fn vars(&self) -> Vec<(String, Var)> {
        let data = self.varmap.data().lock();
        let map: BTreeMap<String, Var> = match data {
            Ok(d) => d.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Err(poisoned) => poisoned
                .into_inner()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        map.into_iter().collect()
    }

    pub fn num_parameters(&self) -> usize {
        self.vars().iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// The model on the trainable weights (records autograd history).
    pub fn trainable(&self) -> candle_core::Result<Qwen2> {
        Qwen2::new(
            &self.config,
            VarBuilder::from_varmap(&self.varmap, DType::F32, &self.device),
        )
    }

    /// The model computing in `dtype` on the trainable f32 weights (mixed precision): each
    /// weight is cast from its f32 master copy with the cast recorded, so gradients come
    /// back to the f32 weights in f32 and the optimizer keeps its moments in f32. `F32`
    /// is [`Policy::trainable`].
    pub fn trainable_in(&self, dtype: DType) -> candle_core::Result<Qwen2> {
        if dtype == DType::F32 {
            return self.trainable();
        }
        let tensors = self
            .vars()
            .into_iter()
            .map(|(k, v)| v.as_tensor().to_dtype(dtype).map(|t| (k, t)))
            .collect::<candle_core::Result<_>>()?;
        Qwen2::new(
            &self.config,
            VarBuilder::from_tensors(tensors, dtype, &self.device),
        )
    }

    /// The model on detached views of the weights: shares their storage (so it sees every
    /// optimizer step without a copy) but records no autograd history, which would
    /// otherwise grow with every cached decoding step.
    pub fn sampler_model(&self) -> candle_core::Result<Qwen2> {
        let tensors = self
            .vars()
            .into_iter()
            .map(|(k, v)| (k, v.as_tensor().detach()))
            .collect();
        Qwen2::new(
            &self.config,
            VarBuilder::from_tensors(tensors, DType::F32, &self.device),
        )
    }

    /// Named weight tensors (detached), for saving.
    pub fn tensors(&self) -> BTreeMap<String, Tensor> {
        self.vars()
            .into_iter()
            .map(|(k, v)| (k, v.as_tensor().detach()))
            .collect()
    }

    /// Overwrites every parameter with the tensor of the same name; all must be present
    /// with matching shapes.
    pub fn load_tensors(
        &self,
        tensors: &std::collections::HashMap<String, Tensor>,
    ) -> candle_core::Result<()> {
        for (name, var) in self.vars() {
            let Some(t) = tensors.get(&name) else {
                candle_core::bail!("tensor {name} is missing");
            };
            if t.dims() != var.dims() {
                candle_core::bail!(
                    "tensor {name} has shape {:?}, the config expects {:?}",
                    t.dims(),
                    var.dims()
                );
            }
            var.set(&t.to_dtype(DType::F32)?.to_device(&self.device)?)?;
        }
        Ok(())
    }
}

/// Box-Muller standard normal.
fn standard_normal<R: rand::Rng>(rng: &mut R) -> f32 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}
