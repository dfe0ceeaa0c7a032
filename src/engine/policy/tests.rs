//! The policy against candle's reference Qwen2, its gradients, and cache consistency.
use candle_core::{DType, Device, Result, Tensor, D};
use candle_nn::VarBuilder;
use rand::SeedableRng;

use super::model::token_logprobs;
use super::sampler::{sample, Request, SamplingParams};
use super::tokenizer::{BOS, EOS};
use super::*;

fn tiny() -> Policy {
    let tok = CharTokenizer::default();
    let mut cfg = PolicyConfig::tiny(tok.vocab_size(), BOS, EOS);
    cfg.hidden_size = 32;
    cfg.intermediate_size = 64;
    cfg.num_hidden_layers = 2;
    cfg.num_attention_heads = 4;
    cfg.num_key_value_heads = 2;
    cfg.max_position_embeddings = 64;
    // Larger weights than the default init so differences are visible.
    let p = Policy::init(cfg, tok.into(), 7, &Device::Cpu).unwrap();
    for (_, v) in p.vars() {
        let t = (v.as_tensor() * 10.0).unwrap();
        v.set(&t).unwrap();
    }
    p
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn matches_candle_reference_qwen2() -> Result<()> {
    let p = tiny();
    let c = &p.config;
    let stock_cfg = candle_transformers::models::qwen2::Config {
        vocab_size: c.vocab_size,
        hidden_size: c.hidden_size,
        intermediate_size: c.intermediate_size,
        num_hidden_layers: c.num_hidden_layers,
        num_attention_heads: c.num_attention_heads,
        num_key_value_heads: c.num_key_value_heads,
        max_position_embeddings: c.max_position_embeddings,
        sliding_window: c.max_position_embeddings,
        max_window_layers: c.num_hidden_layers,
        tie_word_embeddings: c.tie_word_embeddings,
        rope_theta: c.rope_theta,
        rms_norm_eps: c.rms_norm_eps,
        use_sliding_window: false,
        hidden_act: candle_nn::Activation::Silu,
    };
    let tensors = p.tensors().into_iter().collect();
    let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
    let mut stock = candle_transformers::models::qwen2::Model::new(&stock_cfg, vb)?;
    let ids = Tensor::new(&[[1u32, 5, 9, 12, 3, 17, 4, 8]], &Device::Cpu)?;
    let want = stock.forward(&ids, 0, None)?;
    let mine = p.trainable()?;
    let positions = Tensor::arange(0u32, 8, &Device::Cpu)?.unsqueeze(0)?;
    let mask = model::causal_mask(8, DType::F32, &Device::Cpu)?;
    let (got, _) = mine.hidden(&ids, &positions, &mask, None)?;
    let d = max_abs_diff(&got, &want);
    assert!(d < 1e-4, "hidden states differ from candle's qwen2 by {d}");
    Ok(())
}

#[test]
fn every_parameter_receives_a_nonzero_gradient() -> Result<()> {
    let p = tiny();
    let model = p.trainable()?;
    let ids = Tensor::new(&[[1u32, 5, 9, 12, 3], [1, 7, 7, 2, 0]], &Device::Cpu)?;
    let targets = Tensor::new(&[[5u32, 9, 12, 3, 2], [7, 7, 2, 0, 0]], &Device::Cpu)?;
    let logp = token_logprobs(&model.forward_train(&ids)?, &targets)?;
    let adv = Tensor::new(
        &[[0.0f32, 1.0, -0.5, 1.0, 2.0], [0.0, -1.0, 0.5, 0.0, 0.0]],
        &Device::Cpu,
    )?;
    let mask = Tensor::new(
        &[[0.0f32, 1., 1., 1., 1.], [0., 1., 1., 0., 0.]],
        &Device::Cpu,
    )?;
    // A policy-gradient-shaped loss: -sum(A * mask * log p) (the objectives live in rl/).
    let loss = (logp * (adv * mask)?)?.sum_all()?.neg()?;
    let grads = loss.backward()?;
    let vars = p.vars();
    assert_eq!(
        vars.len(),
        2 * 12 + 2,
        "embed + norm + 12 tensors per layer"
    );
    for (name, var) in vars {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name} has no gradient"));
        let s = g.abs()?.sum_all()?.to_scalar::<f32>()?;
        assert!(s > 0.0 && s.is_finite(), "{name} gradient sum {s}");
    }
    Ok(())
}

#[test]
fn cached_decoding_matches_a_full_forward() -> Result<()> {
    let p = tiny();
    let model = p.sampler_model()?;
    let ctx: Vec<u32> = vec![1, 5, 9, 12, 3, 17];
    // Greedy continuation through the sampler, then recompute each token's log-prob with a
    // single full forward pass over the whole sequence.
    let params = SamplingParams {
        temperature: 1.0,
        max_tokens: 6,
        stop_at: None,
        eos: 9999,
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let (out, stats) = sample(
        &model,
        &[Request {
            context: &ctx,
            cache: None,
            copies: 1,
            max_tokens: None,
        }],
        &params,
        false,
        &mut rng,
    )?;
    let gen = &out[0];
    assert_eq!(gen.tokens.len(), 6);
    assert_eq!(stats.forwarded_tokens, (ctx.len() - 1 + 6) as u64);
    let full: Vec<u32> = ctx.iter().chain(&gen.tokens).copied().collect();
    let n = full.len();
    let ids = Tensor::from_vec(full[..n - 1].to_vec(), (1, n - 1), &Device::Cpu)?;
    let tg = Tensor::from_vec(full[1..].to_vec(), (1, n - 1), &Device::Cpu)?;
    let lp: Vec<f32> = token_logprobs(&model.forward_train(&ids)?, &tg)?
        .squeeze(0)?
        .to_vec1()?;
    for (i, &l) in gen.logprobs.iter().enumerate() {
        let want = lp[ctx.len() - 1 + i];
        assert!(
            (l - want).abs() < 1e-4,
            "token {i}: cached {l} vs full {want}"
        );
    }
    Ok(())
}

#[test]
fn branched_caches_and_mixed_prefixes_agree_with_fresh_prefill() -> Result<()> {
    let p = tiny();
    let model = p.sampler_model()?;
    let params = SamplingParams {
        temperature: 1.0,
        max_tokens: 4,
        stop_at: None,
        eos: 9999,
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let short: Vec<u32> = vec![1, 4, 6];
    // Sample a step from `short`, keeping the cache.
    let (first, _) = sample(
        &model,
        &[Request {
            context: &short,
            cache: None,
            copies: 1,
            max_tokens: None,
        }],
        &params,
        true,
        &mut rng,
    )?;
    let node: Vec<u32> = short.iter().chain(&first[0].tokens).copied().collect();
    let cache = first[0].cache.clone().expect("cache kept");
    assert_eq!(cache.0.len(), node.len() - 1);
    // Continue the node from its cache in a batch with an unrelated, longer fresh prompt,
    // and compare with continuing it without the cache: same seeds, same tokens/log-probs.
    let other: Vec<u32> = vec![1, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8];
    let run = |with_cache: bool| -> Result<Vec<super::sampler::Completion>> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let reqs = [
            Request {
                context: &node,
                cache: with_cache.then_some(&cache),
                copies: 2,
                max_tokens: None,
            },
            Request {
                context: &other,
                cache: None,
                copies: 1,
                max_tokens: None,
            },
        ];
        Ok(sample(&model, &reqs, &params, false, &mut rng)?.0)
    };
    let (a, b) = (run(true)?, run(false)?);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.tokens, y.tokens);
        for (l1, l2) in x.logprobs.iter().zip(&y.logprobs) {
            assert!((l1 - l2).abs() < 1e-4, "{l1} vs {l2}");
        }
    }
    Ok(())
}

#[test]
fn sampler_view_sees_optimizer_updates() -> Result<()> {
    let p = tiny();
    let view = p.sampler_model()?;
    let ids = Tensor::new(&[[1u32, 5, 9]], &Device::Cpu)?;
    let before = view.forward_train(&ids)?;
    let (_, var) = &p.vars()[0];
    var.set(&(var.as_tensor() * 2.0)?)?;
    let after = view.forward_train(&ids)?;
    assert!(max_abs_diff(&before, &after) > 1e-3);
    Ok(())
}

#[test]
fn checkpoint_round_trip_gives_identical_logits() -> Result<()> {
    let p = tiny();
    let dir = tempfile::tempdir().map_err(candle_core::Error::wrap)?;
    checkpoint::save(&p, dir.path()).map_err(candle_core::Error::wrap)?;
    let q = checkpoint::load(dir.path(), &Device::Cpu).map_err(candle_core::Error::wrap)?;
    let ids = Tensor::new(&[[1u32, 5, 9, 3]], &Device::Cpu)?;
    let a = p.trainable()?.forward_train(&ids)?;
    let b = q.trainable()?.forward_train(&ids)?;
    assert_eq!(max_abs_diff(&a, &b), 0.0);
    assert_eq!(q.config, p.config);
    // A config of another architecture is refused with the tensor named.
    let mut other = p.config.clone();
    other.hidden_size = 64;
    let cfg_path = dir.path().join("config.json");
    let text = serde_json::to_string(&other).map_err(candle_core::Error::wrap)?;
    std::fs::write(&cfg_path, text)?;
    let err = checkpoint::load(dir.path(), &Device::Cpu)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("model.safetensors"), "{err}");
    let _ = D::Minus1;
    Ok(())
}

/// A folder arbor exported in the Hugging Face layout loads back with arbor's own
/// character tokenizer, so it exports to GGUF again (the plateau protocol's starting
/// point served by llama.cpp: the first weight sync re-exports it).
#[test]
fn an_exported_folder_loads_back_with_its_tokenizer_and_exports_to_gguf_again() {
    let p = tiny();
    let dir = tempfile::tempdir().unwrap();
    let hf = dir.path().join("exported");
    super::checkpoint::save_hf(&p, &hf, super::checkpoint::SaveDtype::F32).unwrap();
    let back = super::checkpoint::load(&hf, &Device::Cpu).unwrap();
    assert_eq!(back.tokenizer.as_char(), p.tokenizer.as_char());
    super::gguf::save_gguf(
        &back,
        &dir.path().join("again.gguf"),
        super::checkpoint::SaveDtype::F32,
    )
    .unwrap();
    // transformers reads the same config.json: the model's keys are still at the top.
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(hf.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["vocab_size"], p.config.vocab_size);
    assert_eq!(cfg["model_type"], "qwen2");

    // A folder exported before config.json kept arbor's tokenizer (its tokenizer.json
    // alone) is recognised as arbor's character tokenizer and exports to GGUF too.
    let mut old = cfg.clone();
    old.as_object_mut().unwrap().remove("arbor_tokenizer");
    std::fs::write(hf.join("config.json"), old.to_string()).unwrap();
    let back = super::checkpoint::load(&hf, &Device::Cpu).unwrap();
    assert_eq!(back.tokenizer.as_char(), p.tokenizer.as_char());
    super::gguf::save_gguf(
        &back,
        &dir.path().join("old.gguf"),
        super::checkpoint::SaveDtype::F32,
    )
    .unwrap();
}

/// The GGUF export read back by candle's own GGUF Qwen2 (llama.cpp's tensor names and
/// metadata keys): the same logits as the policy, and the vocabulary spelled byte-level.
#[test]
fn gguf_export_loads_in_candles_gguf_qwen2_with_the_same_logits() {
    use candle_core::quantized::gguf_file;
    let p = tiny();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.gguf");
    super::gguf::save_gguf(&p, &path, super::checkpoint::SaveDtype::F32).unwrap();
    let mut f = std::fs::File::open(&path).unwrap();
    let ct = gguf_file::Content::read(&mut f).unwrap();
    assert_eq!(
        ct.metadata["general.architecture"].to_string().unwrap(),
        "qwen2"
    );
    let tokens = ct.metadata["tokenizer.ggml.tokens"].to_vec().unwrap();
    assert_eq!(tokens.len(), p.config.vocab_size);
    let space = p.tokenizer.encode(" ").unwrap()[0] as usize;
    let newline = p.tokenizer.encode("\n").unwrap()[0] as usize;
    assert_eq!(tokens[space].to_string().unwrap(), "Ġ");
    assert_eq!(tokens[newline].to_string().unwrap(), "Ċ");
    assert!(!ct.metadata["tokenizer.ggml.merges"]
        .to_vec()
        .unwrap()
        .is_empty());
    let mut m = candle_transformers::models::quantized_qwen2::ModelWeights::from_gguf(
        ct,
        &mut f,
        &Device::Cpu,
    )
    .unwrap();
    let ids: Vec<u32> = p.tokenizer.encode("12 3 4 = 7\n").unwrap();
    let x = Tensor::new(ids.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    // candle's GGUF Qwen2 returns the last position's logits.
    let theirs = m.forward(&x, 0).unwrap().flatten_all().unwrap();
    let ours = p
        .sampler_model()
        .unwrap()
        .forward_train(&x)
        .unwrap()
        .squeeze(0)
        .unwrap()
        .get(ids.len() - 1)
        .unwrap();
    let d = max_abs_diff(&theirs, &ours);
    assert!(d < 1e-3, "max abs logit difference {d}");
}
