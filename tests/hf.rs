//! A Hugging Face-layout checkpoint, end to end: a tiny random Qwen2 written the way real
//! checkpoints are (bf16 safetensors in two shards with an index, untied embeddings,
//! config.json with fields arbor ignores, a tokenizer.json made with the tokenizers crate,
//! a ChatML chat template and a list of EOS ids), loaded through the path `--model` takes,
//! sampled, trained for a DeepSearch iteration on math problems, saved, reloaded.
use std::collections::HashMap;
use std::path::Path;

use arbor::engine::methods::deepsearch::search::config::StepMode;
use arbor::engine::policy::checkpoint::{self, SaveDtype};
use arbor::engine::policy::{Policy, Tokenizer};
use arbor::engine::task::TaskKind;
use arbor::engine::training::config::RunConfig;
use arbor::engine::training::registry::MethodKind;
use arbor::engine::training::sink::MemorySink;
use arbor::engine::training::split;
use arbor::engine::training::trainer::Trainer;
use arbor::engine::training::warm_start::prepare_policy;
use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};

const HIDDEN: usize = 32;
const INTER: usize = 64;
const LAYERS: usize = 2;
const HEADS: usize = 4;
const KV: usize = 2;

/// A tokenizer.json built with the tokenizers crate: characters as tokens plus Qwen's
/// special tokens, and BPE `merges` if any (each merged pair also a token, after the
/// characters).
fn write_tokenizer_with(dir: &Path, merges: &[(&str, &str)]) -> usize {
    use tokenizers::models::bpe::BPE;
    let chars = "0123456789+-*/=()., :?\n\\{}^abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut vocab: tokenizers::models::bpe::Vocab = Default::default();
    for (i, c) in chars.chars().enumerate() {
        vocab.insert(c.to_string(), i as u32);
    }
    for (a, b) in merges {
        let id = vocab.len() as u32;
        vocab.insert(format!("{a}{b}"), id);
    }
    let n = vocab.len();
    let bpe = BPE::builder()
        .vocab_and_merges(
            vocab,
            merges
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        )
        .build()
        .unwrap();
    let mut t = tokenizers::Tokenizer::new(bpe);
    t.with_decoder(Some(tokenizers::decoders::fuse::Fuse::new()));
    t.add_special_tokens(vec![
        tokenizers::AddedToken::from("<|endoftext|>", true),
        tokenizers::AddedToken::from("<|im_start|>", true),
        tokenizers::AddedToken::from("<|im_end|>", true),
    ])
    .unwrap();
    t.save(dir.join("tokenizer.json"), false).unwrap();
    std::fs::write(
        dir.join("tokenizer_config.json"),
        serde_json::json!({
            "eos_token": "<|im_end|>",
            "pad_token": "<|endoftext|>",
            "add_bos_token": false,
            "chat_template": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
        })
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("generation_config.json"),
        format!("{{\"eos_token_id\": [{}, {}]}}", n + 2, n),
    )
    .unwrap();
    n + 3
}

/// Random weights, bf16, in two shards with an index; lm_head untied.
fn write_checkpoint(dir: &Path) {
    write_checkpoint_with(dir, &[])
}

fn write_checkpoint_with(dir: &Path, merges: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).unwrap();
    let vocab = write_tokenizer_with(dir, merges);
    std::fs::write(
        dir.join("config.json"),
        serde_json::json!({
            "architectures": ["Qwen2ForCausalLM"],
            "model_type": "qwen2",
            "vocab_size": vocab,
            "hidden_size": HIDDEN,
            "intermediate_size": INTER,
            "num_hidden_layers": LAYERS,
            "num_attention_heads": HEADS,
            "num_key_value_heads": KV,
            "max_position_embeddings": 512,
            "rope_theta": 10000.0,
            "rms_norm_eps": 1e-6,
            "tie_word_embeddings": false,
            "hidden_act": "silu",
            "torch_dtype": "bfloat16",
            "eos_token_id": vocab - 3,
            "bos_token_id": vocab - 3,
            // Fields real configs carry and arbor ignores.
            "attention_dropout": 0.0,
            "initializer_range": 0.02,
            "use_cache": true,
            "use_sliding_window": false,
            "sliding_window": 4096,
            "max_window_layers": 21,
            "transformers_version": "4.44.0",
        })
        .to_string(),
    )
    .unwrap();
    let dev = Device::Cpu;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mut t = |shape: &[usize], scale: f32| {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| scale * (rng.random::<f32>() - 0.5))
            .collect();
        Tensor::from_vec(v, shape, &dev)
            .unwrap()
            .to_dtype(DType::BF16)
            .unwrap()
    };
    let head = HIDDEN / HEADS;
    let mut shards: Vec<Vec<(String, Tensor)>> = vec![Vec::new(), Vec::new()];
    shards[0].push(("model.embed_tokens.weight".into(), t(&[vocab, HIDDEN], 0.5)));
    shards[1].push(("lm_head.weight".into(), t(&[vocab, HIDDEN], 0.5)));
    shards[1].push(("model.norm.weight".into(), t(&[HIDDEN], 0.2)));
    for l in 0..LAYERS {
        let p = format!("model.layers.{l}");
        let s = &mut shards[l % 2];
        for (name, shape) in [
            ("self_attn.q_proj.weight", vec![HEADS * head, HIDDEN]),
            ("self_attn.q_proj.bias", vec![HEADS * head]),
            ("self_attn.k_proj.weight", vec![KV * head, HIDDEN]),
            ("self_attn.k_proj.bias", vec![KV * head]),
            ("self_attn.v_proj.weight", vec![KV * head, HIDDEN]),
            ("self_attn.v_proj.bias", vec![KV * head]),
            ("self_attn.o_proj.weight", vec![HIDDEN, HEADS * head]),
            ("mlp.gate_proj.weight", vec![INTER, HIDDEN]),
            ("mlp.up_proj.weight", vec![INTER, HIDDEN]),
            ("mlp.down_proj.weight", vec![HIDDEN, INTER]),
            ("input_layernorm.weight", vec![HIDDEN]),
            ("post_attention_layernorm.weight", vec![HIDDEN]),
        ] {
            s.push((format!("{p}.{name}"), t(&shape, 0.4)));
        }
    }
    let mut map = serde_json::Map::new();
    for (i, s) in shards.iter().enumerate() {
        let file = format!("model-0000{}-of-00002.safetensors", i + 1);
        let bytes = safetensors::serialize(s.iter().map(|(k, v)| (k.as_str(), v)), None).unwrap();
        std::fs::write(dir.join(&file), bytes).unwrap();
        for (k, _) in s {
            map.insert(k.clone(), file.clone().into());
        }
    }
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        serde_json::json!({"metadata": {}, "weight_map": map}).to_string(),
    )
    .unwrap();
}

fn logits(p: &Policy, ids: &[u32]) -> Vec<f32> {
    let model = p.sampler_model().unwrap();
    let x = Tensor::new(ids, p.device()).unwrap().unsqueeze(0).unwrap();
    model
        .forward_train(&x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn math_data(dir: &Path) {
    let rows = [
        ("What is 2+3?", "5"),
        ("What is 6*7?", "42"),
        ("Simplify 10/4.", "\\frac{5}{2}"),
        ("What is 9-4?", "5"),
    ];
    let lines: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(i, (q, a))| {
            serde_json::json!({"id": format!("m{i}"), "problem": q, "answer": a}).to_string()
        })
        .collect();
    std::fs::write(dir.join("train.jsonl"), lines.join("\n")).unwrap();
    std::fs::write(dir.join("test.jsonl"), lines[..2].join("\n")).unwrap();
}

#[test]
fn a_hugging_face_checkpoint_loads_samples_trains_on_math_saves_and_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let model_dir = dir.path().join("qwen-tiny");
    write_checkpoint(&model_dir);
    math_data(dir.path());

    // The path `arbor train --model DIR --task math` takes.
    let mut cfg = RunConfig {
        method: MethodKind::DeepSearch,
        ..RunConfig::default()
    };
    cfg.policy.model = Some(model_dir.clone());
    cfg.data.task = TaskKind::Math;
    cfg.data.train_data = Some(dir.path().join("train.jsonl"));
    cfg.data.test_data = Some(dir.path().join("test.jsonl"));
    cfg.search.step = StepMode::Chunk;
    cfg.search.step_max_tokens = 8;
    cfg.search.max_depth = 4;
    cfg.search.width = 2;
    cfg.search.n = 2;
    cfg.train.problems_per_step = 2;
    cfg.train.max_tokens = 32;
    cfg.train.iterations = 1;
    cfg.adaptive.enabled = false;
    cfg.eval.k = 2;
    cfg.eval.every = 0;
    cfg.validate().unwrap();
    let data = split::load(&cfg.data).unwrap();
    assert_eq!(data.train.len(), 4);
    let mut sink = MemorySink::default();
    let (policy, key) = prepare_policy(&cfg, &data, &mut sink).unwrap();
    assert!(key.starts_with("model:"));
    let Tokenizer::Hf(tok) = &policy.tokenizer else {
        panic!("a tokenizer.json checkpoint loads as a Hugging Face tokenizer");
    };
    let vocab = policy.config.vocab_size as u32;
    assert_eq!(
        tok.eos,
        vocab - 1,
        "<|im_end|>, the first of generation_config's EOS ids"
    );
    assert!(!policy.config.tie_word_embeddings);
    // The prompt is one ChatML user turn.
    let prompt = policy.tokenizer.prompt_ids(&data.train[0].prompt());
    assert_eq!(prompt[0], vocab - 2, "<|im_start|>");
    assert!(policy
        .tokenizer
        .decode(&prompt)
        .contains("What is 2+3?\nPlease reason step by step"));
    let before = logits(&policy, &prompt);

    // Sampling works on it.
    let model = policy.sampler_model().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let params = arbor::engine::policy::sampler::SamplingParams {
        temperature: 1.0,
        max_tokens: 12,
        stop_at: None,
        eos: policy.tokenizer.eos(),
    };
    let reqs = [arbor::engine::policy::sampler::Request {
        context: &prompt,
        cache: None,
        copies: 3,
        max_tokens: None,
    }];
    let (out, stats) =
        arbor::engine::policy::sampler::sample(&model, &reqs, &params, false, &mut rng).unwrap();
    assert_eq!(out.len(), 3);
    assert!(stats.generated_tokens > 0);

    // One DeepSearch iteration on the math problems: trees searched in chunks, judged by
    // the boxed-answer verifier, and an update that changes the weights.
    let mut trainer = Trainer::new(cfg.clone(), policy, data).unwrap();
    let summary = trainer.run("hf", &key, &mut sink).unwrap();
    assert_eq!(summary.iterations, 1);
    let it = &sink.iterations[0];
    assert!(it.search.as_ref().unwrap().expansions > 0);
    let trees = &sink.trees[0];
    assert_eq!(trees.len(), 2);
    let reasons: Vec<String> = trees
        .iter()
        .flat_map(|t| t.nodes.iter().filter_map(|n| n.reason.clone()))
        .collect();
    assert!(
        reasons
            .iter()
            .all(|r| r.contains("boxed") || r.starts_with("correct")),
        "{reasons:?}"
    );
    let after = logits(&trainer.policy, &prompt);
    assert_ne!(before, after, "the update changed the policy");

    // Saved in HF layout (f32), reloaded through the same path: identical logits.
    let saved = dir.path().join("saved");
    checkpoint::save_hf(&trainer.policy, &saved, SaveDtype::F32).unwrap();
    for f in [
        "model.safetensors",
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ] {
        assert!(saved.join(f).exists(), "{f}");
    }
    let cfg_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(saved.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg_json["architectures"][0], "Qwen2ForCausalLM");
    assert_eq!(cfg_json["model_type"], "qwen2");
    let back = checkpoint::load(&saved, &Device::Cpu).unwrap();
    assert_eq!(logits(&back, &prompt), after);
    assert_eq!(
        back.tokenizer.prompt_ids(&trees[0].prompt),
        trainer.policy.tokenizer.prompt_ids(&trees[0].prompt)
    );

    // bf16 halves the file and stays close.
    let half = dir.path().join("half");
    checkpoint::save_hf(&trainer.policy, &half, SaveDtype::Bf16).unwrap();
    let size = |p: &Path| {
        std::fs::metadata(p.join("model.safetensors"))
            .unwrap()
            .len()
    };
    assert!(size(&half) * 10 < size(&saved) * 6);
    let b = checkpoint::load(&half, &Device::Cpu).unwrap();
    let lb = logits(&b, &prompt);
    let max = lb
        .iter()
        .zip(&after)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(max < 0.5, "bf16 logits differ by {max}");
    let _: HashMap<String, Tensor> = checkpoint::read_weights(&half, &Device::Cpu).unwrap();
}

/// `arbor save-model --format gguf` of a Qwen2-layout checkpoint with a BPE tokenizer:
/// llama.cpp's tensor names and shapes, the weights themselves, every token with its
/// type, the merges and the `qwen2` pre-tokenizer, read back with candle's GGUF reader.
/// (Checked here on a tiny random checkpoint; no real Qwen2 weights are on this machine.)
#[test]
fn a_qwen2_checkpoint_exports_to_gguf_with_its_vocabulary_and_merges() {
    use arbor::engine::policy::gguf::{gguf_name, save_gguf};
    use candle_core::quantized::gguf_file::{Content, Value};
    let dir = tempfile::tempdir().unwrap();
    let model_dir = dir.path().join("qwen-merges");
    let merges = [("1", "2"), ("a", "b"), ("12", "3")];
    write_checkpoint_with(&model_dir, &merges);
    let policy = checkpoint::load(&model_dir, &Device::Cpu).unwrap();
    let out = dir.path().join("policy.gguf");
    save_gguf(&policy, &out, SaveDtype::F32).unwrap();

    let mut f = std::fs::File::open(&out).unwrap();
    let content = Content::read(&mut f).unwrap();
    let meta = |k: &str| content.metadata.get(k).unwrap_or_else(|| panic!("no {k}"));
    let strs = |v: &Value| -> Vec<String> {
        v.to_vec()
            .unwrap()
            .iter()
            .map(|x| x.to_string().unwrap().clone())
            .collect()
    };
    assert_eq!(meta("general.architecture").to_string().unwrap(), "qwen2");
    assert_eq!(meta("tokenizer.ggml.model").to_string().unwrap(), "gpt2");
    assert_eq!(meta("tokenizer.ggml.pre").to_string().unwrap(), "qwen2");
    assert_eq!(
        strs(meta("tokenizer.ggml.merges")),
        vec!["1 2", "a b", "12 3"]
    );
    let Tokenizer::Hf(tok) = &policy.tokenizer else {
        panic!("a tokenizer.json checkpoint loads as a Hugging Face tokenizer");
    };
    let tokens = strs(meta("tokenizer.ggml.tokens"));
    assert_eq!(tokens.len(), policy.config.vocab_size);
    for (id, t) in tokens.iter().enumerate() {
        assert_eq!(
            Some(t.clone()),
            tok.inner.id_to_token(id as u32),
            "token {id}"
        );
    }
    let types: Vec<i32> = meta("tokenizer.ggml.token_type")
        .to_vec()
        .unwrap()
        .iter()
        .map(|x| x.to_i32().unwrap())
        .collect();
    let vocab = policy.config.vocab_size;
    // The three ChatML specials are control tokens (3), the rest normal (1).
    assert_eq!(&types[vocab - 3..], &[3, 3, 3]);
    assert!(types[..vocab - 3].iter().all(|&t| t == 1));
    assert_eq!(
        meta("tokenizer.ggml.eos_token_id").to_u32().unwrap(),
        policy.tokenizer.eos()
    );
    assert_eq!(
        meta("qwen2.attention.head_count_kv").to_u32().unwrap() as usize,
        KV
    );

    // Every weight under its llama.cpp name, with its values.
    let weights = checkpoint::read_weights(&model_dir, &Device::Cpu).unwrap();
    assert_eq!(content.tensor_infos.len(), weights.len());
    for (hf, w) in &weights {
        let name = gguf_name(hf).unwrap();
        let q = content.tensor(&mut f, &name, &Device::Cpu).unwrap();
        let got = q.dequantize(&Device::Cpu).unwrap();
        assert_eq!(got.dims(), w.dims(), "{name}");
        let want = w.to_dtype(DType::F32).unwrap();
        let diff = (got - want)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(diff, 0.0, "{name}");
    }

    // A BPE without merges is refused: llama.cpp will not load one.
    let plain = dir.path().join("qwen-plain");
    write_checkpoint(&plain);
    let p = checkpoint::load(&plain, &Device::Cpu).unwrap();
    let e = save_gguf(&p, &dir.path().join("x.gguf"), SaveDtype::F32).unwrap_err();
    assert!(e.to_string().contains("no BPE merges"), "{e}");
    assert!(!dir.path().join("x.gguf").exists());
}
