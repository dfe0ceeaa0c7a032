//! Throughput of the tiny default policy, release build:
//! `cargo run --release --example bench`. Prints a table and one JSON line.
//!
//! * sampler tokens/s at batch 1 and 16 (KV-cached decoding, 48 tokens per row);
//! * one training step (forward, backward, AdamW) on 16 x 8 sequences of 40 tokens.
use std::time::Instant;

use arbor::engine::config::RunConfig;
use arbor::engine::objective::Clip;
use arbor::engine::optim::{AdamW, AdamWConfig};
use arbor::engine::policy::sampler::{sample, Request, SamplingParams};
use arbor::engine::policy::tokenizer::BOS;
use arbor::engine::policy::{CharTokenizer, Policy};
use arbor::engine::update::{policy_update, Sample, UpdateSettings};
use arbor::engine::warm_start::policy_config;
use candle_core::Device;
use rand::SeedableRng;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let tok = CharTokenizer::default();
    let cfg = RunConfig::default();
    let policy = Policy::init(policy_config(&cfg, &tok), tok, 0, &Device::Cpu)?;
    let model = policy.sampler_model()?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let prompt: Vec<u32> = std::iter::once(BOS)
        .chain(policy.tokenizer.encode("3 7 12:72\n")?)
        .collect();
    let params = SamplingParams {
        temperature: 1.0,
        max_tokens: 48,
        stop_at: None,
        eos: u32::MAX, // never stop early: fixed-length rows
    };
    let mut rows = Vec::new();
    for batch in [1usize, 16, 64] {
        let reps = if batch == 1 { 20 } else { 5 };
        // Warm-up call.
        sample(
            &model,
            &[Request {
                context: &prompt,
                cache: None,
                copies: batch,
            }],
            &params,
            false,
            &mut rng,
        )?;
        let t = Instant::now();
        let mut tokens = 0;
        for _ in 0..reps {
            let (_, s) = sample(
                &model,
                &[Request {
                    context: &prompt,
                    cache: None,
                    copies: batch,
                }],
                &params,
                false,
                &mut rng,
            )?;
            tokens += s.generated_tokens;
        }
        let secs = t.elapsed().as_secs_f64();
        rows.push((
            format!("sampler tokens/s, batch {batch}"),
            tokens as f64 / secs,
        ));
    }

    let mut opt = AdamW::new(
        policy.vars(),
        AdamWConfig {
            lr: 1e-4,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            max_grad_norm: 1.0,
        },
    )?;
    let samples: Vec<Sample> = (0..128)
        .map(|i| Sample {
            prompt: prompt.clone(),
            response: (0..30).map(|j| 3 + ((i + j) % 20) as u32).collect(),
            advantages: vec![if i % 2 == 0 { 1.0 } else { -1.0 }; 30],
        })
        .collect();
    let settings = UpdateSettings {
        clip: Clip {
            low: 0.2,
            high: 0.28,
            dual: Some(10.0),
        },
        minibatches: 1,
        epochs: 1,
        lr: 1e-4,
    };
    policy_update(&policy, &mut opt, &samples, &settings, &mut rng)?;
    let reps = 10;
    let t = Instant::now();
    for _ in 0..reps {
        policy_update(&policy, &mut opt, &samples, &settings, &mut rng)?;
    }
    let step_ms = t.elapsed().as_secs_f64() * 1000.0 / reps as f64;
    rows.push(("train step ms (128 seqs x 41 tokens)".into(), step_ms));

    println!("{:<42} {:>12}", "figure", "value");
    for (name, v) in &rows {
        println!("{name:<42} {v:>12.1}");
    }
    let json: serde_json::Map<String, serde_json::Value> = rows
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::json!((v * 10.0).round() / 10.0)))
        .collect();
    println!(
        "{}",
        serde_json::json!({ "parameters": policy.num_parameters(), "figures": json })
    );
    Ok(())
}
