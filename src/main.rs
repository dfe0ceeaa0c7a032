//! The `arbor` command line: wires engine, store and app together.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use arbor::app::commands::{
    self, eval::EvalOptions, export::ExportFormat, export::ExportOptions, gen_data::GenDataOptions,
    train::TrainOptions, view::ViewOptions,
};
use arbor::engine::training::registry::MethodKind;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// arbor: DeepSearch-style tree search inside the RL training loop of small reasoning
/// models. With no command, runs the embedded default (a Countdown run on the tiny model).
#[derive(Parser)]
#[command(name = "arbor", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Train a policy (warm start, then RL); prints one JSON summary line on stdout.
    Train(TrainArgs),
    /// Evaluate a run's latest checkpoint on the held-out split; prints one JSON line.
    Eval(EvalArgs),
    /// Generate leak-free Countdown train/test splits as JSONL.
    GenData(GenDataArgs),
    /// Write an iteration's trees as JSON, or one tree as Graphviz DOT.
    Export(ExportArgs),
    /// Watch a live run (attach; q detaches) or replay a stored one; without --run, list
    /// the store's runs.
    View(ViewArgs),
    /// Check a store: every iteration complete, trees consistent with their metrics,
    /// checkpoints readable. Exits non-zero and lists each problem found.
    Fsck(FsckArgs),
    /// Train several methods and seeds at an equal budget of generated tokens from the same
    /// warm start; writes a table, an SVG plot of pass@1 against tokens, and a JSON line.
    Compare(CompareArgs),
    /// Write a run's latest policy in Hugging Face layout (transformers, vLLM, SGLang) or
    /// as GGUF (llama.cpp, Ollama).
    SaveModel(SaveModelArgs),
    /// Write a checkpoint folder of a named shape with random weights (no download): tiny,
    /// qwen2-0.5b or qwen2-1.5b. For the GPU check and for timing real-sized models.
    InitModel(InitModelArgs),
    /// Check the device path (candle's ops and autograd, what CUDA runs) against arbor's
    /// CPU kernels on one model: logits, one update's loss and gradient norm, the weights
    /// after it. Prints one JSON line; exits non-zero when they disagree.
    DeviceCheck(DeviceCheckArgs),
    /// Recompute every interval of a per-problem file (compare's per_problem.jsonl, the
    /// file eval --strategies names, export --evaluations), resampling number multisets
    /// with the evaluation's own seeds. Prints a table and one JSON line per group.
    Intervals(IntervalsArgs),
}

#[derive(Args)]
struct IntervalsArgs {
    /// Per-problem files (JSON lines).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Also pass@AT, unbiased, from each problem's k samples (AT <= k).
    #[arg(long)]
    at: Option<usize>,
    /// Pair every arm (compare's file) or strategy (eval's) with this one, as the table
    /// did: compare's reference minus arm per seed, eval's strategy minus reference per
    /// budget.
    #[arg(long)]
    reference: Option<String>,
}

#[derive(Args)]
struct InitModelArgs {
    /// tiny, qwen2-0.5b or qwen2-1.5b.
    #[arg(long, default_value = "tiny")]
    shape: arbor::engine::policy::config::Shape,
    /// Output folder (model.safetensors, config.json).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Args)]
struct DeviceCheckArgs {
    /// A checkpoint folder (`arbor init-model --out DIR`, `arbor save-model`, or a Qwen2
    /// checkpoint).
    #[arg(long)]
    model: PathBuf,
    /// cuda, or cpu (the CPU's generic path against its kernels).
    #[arg(long, default_value = "cuda")]
    device: String,
    /// Largest relative difference allowed, to the largest magnitude compared.
    #[arg(long, default_value_t = 1e-3)]
    tolerance: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Args)]
struct SaveModelArgs {
    #[arg(long)]
    run: String,
    /// Output folder (model.safetensors, config.json, tokenizer.json, ...).
    #[arg(long)]
    out: PathBuf,
    /// Weights dtype: f32, bf16 or f16 (GGUF stores bf16 as f16).
    #[arg(long, default_value = "f32")]
    dtype: arbor::engine::policy::checkpoint::SaveDtype,
    /// hf (a folder in Hugging Face layout) or gguf (one file for llama.cpp).
    #[arg(long, value_enum, default_value = "hf")]
    format: commands::save_model::ModelFormat,
    #[arg(long, default_value = arbor::store::DEFAULT_PATH)]
    store: PathBuf,
}

#[derive(Args)]
struct CompareArgs {
    /// Arms, comma-separated: methods (any name `arbor train --method` takes) or
    /// deepsearch-paper (DeepSearch with the paper's switches).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "deepsearch,grpo,dapo,best_of_n"
    )]
    methods: Vec<String>,
    /// More arms: LABEL=METHOD[:KEY=VALUE...], e.g.
    /// nomerge=deepsearch:search.merge_siblings=false (repeatable).
    #[arg(long = "arm")]
    arms: Vec<String>,
    /// Start every arm from this checkpoint folder or this run's latest checkpoint (the
    /// plateau protocol); fresh optimizer for all.
    #[arg(long)]
    from: Option<String>,
    /// Validation problems generated (train, validation and test share no number
    /// multiset).
    #[arg(long)]
    validation_size: Option<usize>,
    /// Test problems generated.
    #[arg(long)]
    test_size: Option<usize>,
    /// The arm paired differences are taken against (default: the first DeepSearch arm).
    #[arg(long)]
    reference: Option<String>,
    /// Evaluate on `test` (default) or `validation` (to choose settings).
    #[arg(long, default_value = "test", value_parser = ["test", "validation"])]
    eval_on: String,
    /// Generated training tokens per run.
    #[arg(long, default_value_t = 300_000)]
    budget_tokens: u64,
    /// Seeds, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    seeds: Vec<u64>,
    #[arg(long, default_value = arbor::store::DEFAULT_PATH)]
    store: PathBuf,
    /// Folder for table.md, pass1_vs_tokens.svg and comparison.json (default: beside the
    /// store, named after the comparison).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Base run config (TOML) shared by every run.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Held-out evaluations at every budget / milestones tokens.
    #[arg(long, default_value_t = 4)]
    milestones: u64,
    /// pass@1 for the "tokens to reach" column.
    #[arg(long, default_value_t = 0.08)]
    threshold: f64,
    /// Samples per test problem at each milestone.
    #[arg(long, default_value_t = 8)]
    eval_k: usize,
    /// Comparison name (default: cmp-N).
    #[arg(long)]
    name: Option<String>,
    /// Equal optimizer steps per token: every arm takes this many optimizer steps per
    /// 1,000 generated training tokens (samples accumulate across iterations until a step
    /// has `train.min_sequences_per_step` of them; no owed step is forgiven). Default: one
    /// step per `train.tokens_per_step` (2048) tokens with at most 4 steps owed.
    #[arg(long)]
    steps_per_1k_tokens: Option<f64>,
}

#[derive(Args)]
struct FsckArgs {
    #[arg(long, default_value = arbor::store::DEFAULT_PATH)]
    store: PathBuf,
    /// Check a store held by a live run, through its trainer (between commits).
    #[arg(long)]
    live: bool,
}

#[derive(Args)]
struct ViewArgs {
    /// Run to open (default: the newest).
    #[arg(long)]
    run: Option<String>,
    #[arg(long, default_value = arbor::store::DEFAULT_PATH)]
    store: PathBuf,
    /// Theme: dark, light, mono, or a TOML file (NO_COLOR forces mono).
    #[arg(long, default_value = "dark")]
    theme: String,
    /// Attach to a live run with every control hidden and refused.
    #[arg(long)]
    readonly: bool,
}

#[derive(Args)]
struct ExportArgs {
    #[arg(long)]
    run: String,
    /// Iteration (1-based) whose trees are written.
    #[arg(long, required_unless_present_any = ["metrics", "evaluations"])]
    iteration: Option<u64>,
    /// Write every committed iteration's metrics as a JSON array instead.
    #[arg(long, conflicts_with = "evaluations")]
    metrics: bool,
    /// Write every stored evaluation's per-problem counts as JSON lines instead (run,
    /// iteration, problem, multiset, k, correct), the input of `arbor intervals`.
    #[arg(long)]
    evaluations: bool,
    #[arg(long, value_enum, default_value = "json")]
    format: ExportFormat,
    /// Problem id (required for dot; filters json).
    #[arg(long)]
    problem: Option<String>,
    /// Output file (default: stdout).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, default_value = arbor::store::DEFAULT_PATH)]
    store: PathBuf,
}

#[derive(Args)]
struct TrainArgs {
    /// The training method (default: the config's, grpo): deepsearch, grpo, dapo,
    /// best_of_n, cispo, tree_distill, grpo_hard, passk or treerl; an unknown name is
    /// refused with the registry's list.
    #[arg(long)]
    method: Option<MethodKind>,
    /// Progress bars on stderr instead of the explorer.
    #[arg(long)]
    headless: bool,
    /// When stderr is not a terminal: a plain progress line every this many seconds
    /// (`30s`) or iterations (`100it`), and at every evaluation.
    #[arg(long, default_value = "10s")]
    log_every: arbor::app::progress_log::LogEvery,
    /// Run seed (sampling, problem order).
    #[arg(long)]
    seed: Option<u64>,
    /// Number of iterations.
    #[arg(long)]
    iterations: Option<u64>,
    /// Stop after this many generated training tokens.
    #[arg(long)]
    budget_tokens: Option<u64>,
    /// Run config (TOML); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The store (sled database folder).
    #[arg(long, default_value = arbor::store::DEFAULT_PATH)]
    store: PathBuf,
    /// Run name (default: <method>-s<seed>-<n>).
    #[arg(long)]
    run: Option<String>,
    /// Training problems as JSONL (`nums`, `target`).
    #[arg(long)]
    train_data: Option<PathBuf>,
    /// Held-out problems as JSONL (`nums`, `target`).
    #[arg(long)]
    test_data: Option<PathBuf>,
    /// Explorer theme: dark, light, mono, or a TOML file (NO_COLOR forces mono).
    #[arg(long, default_value = "dark")]
    theme: String,
    /// Continue this run from its newest checkpoint (rolls back and recomputes any
    /// iteration committed after it).
    #[arg(long, value_name = "RUN")]
    resume: Option<String>,
    /// With --resume: change a retunable setting, e.g. --set lr=1e-5 (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Train a checkpoint folder in Hugging Face layout instead of the tiny model.
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// countdown (default) or math (needs --model, --train-data, --test-data).
    #[arg(long)]
    task: Option<arbor::engine::task::TaskKind>,
    /// cpu, cuda or auto (falls back to CPU with a message).
    #[arg(long)]
    device: Option<String>,
    /// Generate on an inference engine: candle, sglang, vllm or llamacpp, optionally
    /// with its URL (`--generator vllm=http://127.0.0.1:8000`); overrides `[generator]`.
    #[arg(long, value_name = "KIND[=URL]")]
    generator: Option<String>,
}

#[derive(Args)]
struct EvalArgs {
    /// The run whose latest checkpoint is evaluated.
    #[arg(long, required_unless_present = "model")]
    run: Option<String>,
    /// Evaluate a checkpoint folder in Hugging Face layout instead of a run.
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// Settings for --model (TOML: task, data, eval, search).
    #[arg(long)]
    config: Option<PathBuf>,
    /// cpu, cuda or auto (falls back to CPU with a message).
    #[arg(long)]
    device: Option<String>,
    /// With --model: countdown (default) or math (needs --test-data).
    #[arg(long)]
    task: Option<arbor::engine::task::TaskKind>,
    /// Held-out problems as JSONL (default: the run's test split).
    #[arg(long)]
    test_data: Option<PathBuf>,
    #[arg(long, default_value = arbor::store::DEFAULT_PATH)]
    store: PathBuf,
    /// Samples per problem (default: the run's eval.k).
    #[arg(long)]
    k: Option<usize>,
    /// Compare test-time strategies at equal token budgets: sample, best_of_n, best_of_n_checked (step-judged sampling), mcts, puct (needs a tree_distill run: value head).
    #[arg(long, value_delimiter = ',')]
    strategies: Vec<arbor::engine::training::test_time::Strategy>,
    /// Budgets in samples' worth of tokens per problem (with --strategies).
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    budgets: Vec<usize>,
    /// The strategy every other is paired against at each budget (default: the first).
    #[arg(long)]
    reference: Option<arbor::engine::training::test_time::Strategy>,
}

#[derive(Args)]
struct GenDataArgs {
    /// Preset: default, tinyzero, sos or distill.
    #[arg(long, default_value = "default")]
    preset: String,
    #[arg(long, default_value_t = 1234)]
    seed: u64,
    /// Training problems.
    #[arg(long, default_value_t = 4000)]
    train: usize,
    /// Held-out problems.
    #[arg(long, default_value_t = 200)]
    test: usize,
    /// Validation problems (validation.jsonl); with it, the three splits share no number
    /// multiset and a held-out multiset may give several targets.
    #[arg(long, default_value_t = 0)]
    validation: usize,
    /// Output folder for train.jsonl, test.jsonl and split.json.
    #[arg(long)]
    out: PathBuf,
}

/// Commands that only write to stdout end quietly when its reader goes away (`arbor
/// export ... | head`): SIGPIPE gets its default action back, as for `cat` (Rust ignores
/// it, which turns the next write into a panic). Training keeps ignoring it, so a closed
/// pipe never kills a run between commits.
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: resetting a signal's disposition to SIG_DFL has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    arbor::default_threads();
    arbor::keep_freed_memory();
    arbor::flush_denormals();
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Some(Command::Export(_) | Command::Fsck(_) | Command::Eval(_) | Command::Intervals(_))
    ) {
        quiet_on_closed_pipe();
    }
    let result = match cli.command {
        // The embedded default: a live DeepSearch run on Countdown.
        None => commands::train::train(TrainOptions {
            method: Some(MethodKind::DeepSearch),
            ..TrainOptions::default()
        }),
        Some(Command::Train(a)) => {
            let resume = a.resume.clone();
            let o = TrainOptions {
                method: a.method,
                headless: a.headless,
                log_every: a.log_every,
                seed: a.seed,
                iterations: a.iterations,
                budget_tokens: a.budget_tokens,
                config: a.config,
                store: a.store,
                run: a.run,
                train_data: a.train_data,
                test_data: a.test_data,
                theme: a.theme,
                set: a.set,
                model: a.model,
                device: a.device,
                task: a.task,
                generator: a.generator,
            };
            match resume {
                Some(name) => arbor::app::resume::resume_run(&name, o),
                None => commands::train::train(o),
            }
        }
        Some(Command::Eval(a)) => commands::eval::eval(EvalOptions {
            run: a.run,
            model: a.model,
            config: a.config,
            device: a.device,
            task: a.task,
            test_data: a.test_data,
            store: a.store,
            k: a.k,
            strategies: a.strategies,
            budgets: a.budgets,
            reference: a.reference,
        }),
        Some(Command::Fsck(a)) => commands::fsck::fsck(&a.store, a.live),
        Some(Command::InitModel(a)) => {
            commands::init_model::init_model(commands::init_model::InitModelOptions {
                shape: a.shape,
                out: a.out,
                seed: a.seed,
            })
        }
        Some(Command::DeviceCheck(a)) => {
            commands::device_check::device_check(commands::device_check::DeviceCheckOptions {
                model: a.model,
                device: a.device,
                tolerance: a.tolerance,
                seed: a.seed,
            })
        }
        Some(Command::SaveModel(a)) => {
            commands::save_model::save_model(commands::save_model::SaveModelOptions {
                run: a.run,
                out: a.out,
                store: a.store,
                dtype: a.dtype,
                format: a.format,
            })
        }
        Some(Command::Compare(a)) => {
            let arms = a
                .methods
                .iter()
                .filter(|m| !m.is_empty())
                .map(|m| arbor::app::arms::Arm::from_method(m))
                .chain(a.arms.iter().map(|s| arbor::app::arms::Arm::parse(s)))
                .collect::<anyhow::Result<Vec<_>>>();
            arms.and_then(|arms| {
                arbor::app::compare::compare(arbor::app::compare::CompareOptions {
                    arms,
                    seeds: a.seeds,
                    budget_tokens: a.budget_tokens,
                    store: a.store,
                    out: a.out,
                    config: a.config,
                    milestones: a.milestones,
                    threshold: a.threshold,
                    eval_k: Some(a.eval_k),
                    name: a.name,
                    from: a.from,
                    validation_size: a.validation_size,
                    test_size: a.test_size,
                    eval_on_validation: a.eval_on == "validation",
                    reference: a.reference,
                    steps_per_1k_tokens: a.steps_per_1k_tokens,
                })
            })
        }
        Some(Command::View(a)) => commands::view::view(ViewOptions {
            run: a.run,
            store: a.store,
            theme: a.theme,
            readonly: a.readonly,
        }),
        Some(Command::Export(a)) => commands::export::export(ExportOptions {
            run: a.run,
            iteration: a.iteration,
            metrics: a.metrics,
            evaluations: a.evaluations,
            format: a.format,
            problem: a.problem,
            out: a.out,
            store: a.store,
        }),
        Some(Command::Intervals(a)) => {
            commands::intervals::intervals(commands::intervals::IntervalsOptions {
                files: a.files,
                at: a.at,
                reference: a.reference,
            })
        }
        Some(Command::GenData(a)) => commands::gen_data::gen_data(GenDataOptions {
            preset: a.preset,
            seed: a.seed,
            train: a.train,
            test: a.test,
            validation: a.validation,
            out: a.out,
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
