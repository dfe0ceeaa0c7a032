//! Packs (prompt, response) token sequences into right-padded training tensors.
use candle_core::{Device, Result, Tensor};

use crate::engine::policy::tokenizer::PAD;

/// Inputs, next-token targets, a response mask and per-token advantages, all
/// `(batch, len)`: position `j` predicts token `j + 1` of the sequence.
pub struct TokenBatch {
    pub ids: Tensor,
    pub targets: Tensor,
    pub mask: Tensor,
    pub advantages: Tensor,
    /// Per-token returns the value head is trained towards (search distillation); zeros
    /// where a sequence has none.
    pub returns: Tensor,
    /// Whether any sequence carries returns.
    pub has_returns: bool,
    /// Response tokens in the batch.
    pub tokens: usize,
}

/// One training sequence: the response tokens are scored with `advantages` (one per
/// response token).
pub struct Sequence<'a> {
    pub prompt: &'a [u32],
    pub response: &'a [u32],
    pub advantages: &'a [f32],
    /// One return per response token, or empty.
    pub returns: &'a [f32],
}

pub fn pack(seqs: &[Sequence], dev: &Device) -> Result<TokenBatch> {
    let width = seqs
        .iter()
        .map(|s| s.prompt.len() + s.response.len() - 1)
        .max()
        .unwrap_or(1)
        .max(1);
    let b = seqs.len();
    let mut ids = vec![PAD; b * width];
    let mut targets = vec![PAD; b * width];
    let mut mask = vec![0f32; b * width];
    let mut adv = vec![0f32; b * width];
    let mut ret = vec![0f32; b * width];
    let mut tokens = 0;
    for (r, s) in seqs.iter().enumerate() {
        let full: Vec<u32> = s.prompt.iter().chain(s.response).copied().collect();
        let row = r * width;
        for j in 0..full.len() - 1 {
            ids[row + j] = full[j];
            targets[row + j] = full[j + 1];
            // Target j+1 is a response token when j + 1 >= prompt length.
            if j + 1 >= s.prompt.len() {
                let k = j + 1 - s.prompt.len();
                mask[row + j] = 1.0;
                adv[row + j] = s.advantages.get(k).copied().unwrap_or(0.0);
                ret[row + j] = s.returns.get(k).copied().unwrap_or(0.0);
                tokens += 1;
            }
        }
    }
    Ok(TokenBatch {
        ids: Tensor::from_vec(ids, (b, width), dev)?,
        targets: Tensor::from_vec(targets, (b, width), dev)?,
        mask: Tensor::from_vec(mask, (b, width), dev)?,
        advantages: Tensor::from_vec(adv, (b, width), dev)?,
        returns: Tensor::from_vec(ret, (b, width), dev)?,
        has_returns: seqs.iter().any(|s| !s.returns.is_empty()),
        tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_exactly_the_response_targets() -> Result<()> {
        let s = [
            Sequence {
                prompt: &[1, 5, 6],
                response: &[7, 2],
                advantages: &[0.5, -1.0],
                returns: &[],
            },
            Sequence {
                prompt: &[1, 5],
                response: &[9],
                advantages: &[2.0],
                returns: &[0.25],
            },
        ];
        let b = pack(&s, &Device::Cpu)?;
        assert_eq!(
            b.ids.to_vec2::<u32>()?,
            vec![vec![1, 5, 6, 7], vec![1, 5, 0, 0]]
        );
        assert_eq!(
            b.targets.to_vec2::<u32>()?,
            vec![vec![5, 6, 7, 2], vec![5, 9, 0, 0]]
        );
        assert_eq!(
            b.mask.to_vec2::<f32>()?,
            vec![vec![0., 0., 1., 1.], vec![0., 1., 0., 0.]]
        );
        assert_eq!(
            b.advantages.to_vec2::<f32>()?,
            vec![vec![0., 0., 0.5, -1.0], vec![0., 2.0, 0., 0.]]
        );
        assert_eq!(
            b.returns.to_vec2::<f32>()?,
            vec![vec![0., 0., 0., 0.], vec![0., 0.25, 0., 0.]]
        );
        assert!(b.has_returns);
        assert_eq!(b.tokens, 3);
        Ok(())
    }
}
