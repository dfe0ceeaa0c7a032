//! Step-judged sampling, the test-time baseline that gets what MCTS with step judgement
//! gets and nothing else (`best_of_n_checked` in `arbor eval --strategies`): samples
//! written line by line, each line judged by the task as it is written; a sample ends at
//! its first invalid (or deciding) line, charged the tokens up to there, and a new one
//! starts while the problem's token allowance lasts. The tree's advantage over this
//! baseline, if any, is the tree's own.
use rand::RngCore;

use crate::engine::policy::sampler::{Finish, Request, SamplingParams};
use crate::engine::policy::{Generator, Tokenizer};
use crate::engine::rl::rollout::prompt_tokens;
use crate::engine::task::{task_of, verify, Problem, Rules, StepJudgement};

/// One finished sample of a problem.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedSample {
    pub text: String,
    pub correct: bool,
    pub tokens: usize,
}

/// A problem's samples and the tokens they spent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checked {
    pub samples: Vec<CheckedSample>,
    pub tokens: u64,
}

struct Open {
    tokens: Vec<u32>,
}

/// Samples each problem line by line until `allowance` generated tokens are spent (a
/// sample in progress when the allowance runs out is cut there and verified as it
/// stands). `delimiter` is the step delimiter (the newline token). Without one, every
/// sample is written whole (nothing to judge).
#[allow(clippy::too_many_arguments)]
pub fn checked_samples(
    generator: &dyn Generator,
    tok: &Tokenizer,
    problems: &[&Problem],
    rules: &Rules,
    params: &SamplingParams,
    delimiter: Option<u32>,
    allowance: f64,
    rng: &mut dyn RngCore,
) -> crate::engine::policy::generator::Result<Vec<Checked>> {
    let task = task_of(rules);
    let prompts: Vec<Vec<u32>> = problems.iter().map(|p| prompt_tokens(tok, p)).collect();
    let mut out = vec![Checked::default(); problems.len()];
    let mut open: Vec<Option<Open>> = (0..problems.len()).map(|_| None).collect();
    let budget = allowance.max(1.0).floor() as u64;
    let line = SamplingParams {
        stop_at: delimiter,
        ..*params
    };
    loop {
        // Every problem with allowance left continues its sample or starts one.
        let mut rows = Vec::new();
        let mut contexts = Vec::new();
        for (i, o) in open.iter_mut().enumerate() {
            let left = budget.saturating_sub(out[i].tokens);
            if left == 0 {
                continue;
            }
            let cur = o.get_or_insert_with(|| Open { tokens: Vec::new() });
            let room = params.max_tokens.saturating_sub(cur.tokens.len());
            if room == 0 {
                continue;
            }
            let mut ctx = prompts[i].clone();
            ctx.extend_from_slice(&cur.tokens);
            contexts.push(ctx);
            rows.push((i, room.min(left as usize)));
        }
        if rows.is_empty() {
            break;
        }
        let requests: Vec<Request> = rows
            .iter()
            .zip(&contexts)
            .map(|(&(_, limit), ctx)| Request {
                context: ctx,
                cache: None,
                copies: 1,
                max_tokens: Some(limit),
            })
            .collect();
        let (completions, _) = generator.generate(&requests, &line, false, rng)?;
        for c in completions {
            let (i, _) = rows[c.request];
            let p = problems[i];
            out[i].tokens += c.tokens.len() as u64;
            let Some(cur) = open[i].as_mut() else {
                continue;
            };
            cur.tokens.extend_from_slice(&c.tokens);
            let text = tok.decode(&cur.tokens);
            let verdict = match c.finish {
                // A whole line: judged as written.
                Finish::Delimiter => match task.judge_step(p, &text) {
                    StepJudgement::Invalid(_) => Some(false),
                    StepJudgement::Decided { correct, .. } => Some(correct),
                    StepJudgement::Open | StepJudgement::Forced => None,
                },
                // The end of the sample: EOS, its length limit, or the allowance.
                _ => Some(verify(p, &text, rules).is_correct()),
            };
            let ended_by_allowance = out[i].tokens >= budget;
            if let Some(correct) =
                verdict.or_else(|| ended_by_allowance.then(|| verify(p, &text, rules).is_correct()))
            {
                out[i].samples.push(CheckedSample {
                    tokens: cur.tokens.len(),
                    text,
                    correct,
                });
                open[i] = None;
            }
        }
    }
    // Samples still open (their length limit reached exactly at a line end): verified as
    // they stand.
    for (i, o) in open.into_iter().enumerate() {
        if let Some(cur) = o.filter(|c| !c.tokens.is_empty()) {
            let text = tok.decode(&cur.tokens);
            let correct = verify(problems[i], &text, rules).is_correct();
            out[i].samples.push(CheckedSample {
                tokens: cur.tokens.len(),
                text,
                correct,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::engine::policy::sampler::{Completion, SampleStats};

    /// A generator that writes fixed lines, one per call: a wrong first line, then a
    /// correct solution line by line, then wrong answers; it honours each request's limit.
    struct Script(std::cell::Cell<usize>);

    impl Generator for Script {
        fn max_context(&self) -> usize {
            4096
        }
        fn generate(
            &self,
            requests: &[Request],
            _params: &SamplingParams,
            _keep_cache: bool,
            _rng: &mut dyn RngCore,
        ) -> crate::engine::policy::generator::Result<(Vec<Completion>, SampleStats)> {
            let tok = Tokenizer::default();
            let lines = ["4+6=11\n", "4+6=10\n", "10+12=22\n", "ans 22"];
            let out = requests
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let call = self.0.get();
                    self.0.set(call + 1);
                    let line = lines.get(call).copied().unwrap_or("ans 1");
                    let mut tokens = tok.encode(line).unwrap();
                    let mut finish = if line.ends_with('\n') {
                        Finish::Delimiter
                    } else {
                        Finish::Eos
                    };
                    if let Some(m) = r.max_tokens.filter(|&m| m < tokens.len()) {
                        tokens.truncate(m);
                        finish = Finish::Limit;
                    }
                    Completion {
                        request: i,
                        logprobs: vec![0.0; tokens.len()],
                        entropies: vec![0.0; tokens.len()],
                        tokens,
                        finish,
                        cache: None,
                    }
                })
                .collect();
            Ok((out, SampleStats::default()))
        }
    }

    #[test]
    fn a_sample_ends_at_its_first_invalid_line_and_the_next_one_starts() {
        let tok = Tokenizer::default();
        let p = crate::engine::task::countdown::problem("t", vec![4, 6, 12], 22);
        let params = SamplingParams {
            temperature: 1.0,
            max_tokens: 40,
            stop_at: None,
            eos: tok.eos(),
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let out = checked_samples(
            &Script(std::cell::Cell::new(0)),
            &tok,
            &[&p],
            &Rules::default(),
            &params,
            tok.newline(),
            32.0,
            &mut rng,
        )
        .unwrap();
        let s = &out[0].samples;
        // The invalid first line ends sample 1 after 7 tokens; sample 2 solves it.
        assert_eq!(s[0].text, "4+6=11\n");
        assert!(!s[0].correct);
        assert_eq!(s[0].tokens, 7);
        assert_eq!(s[1].text, "4+6=10\n10+12=22\nans 22");
        assert!(s[1].correct);
        // 7 + 7 + 9 + 6 = 29 tokens; the third sample gets the last 3 and is cut there.
        assert_eq!(s.len(), 3);
        assert_eq!(s[2].text, "ans");
        assert_eq!(out[0].tokens, 32);
    }
}
