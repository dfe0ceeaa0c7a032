//! DeepSearch as a [`Method`]: adaptive training's rounds before the iteration (section
//! 7), one MCTS tree per problem (or the solution cache's answers), Tree-GRPO's token
//! advantages under the clipped objective with clip-higher. Settings under `[search]`
//! and `[adaptive]`.
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value};

use crate::engine::methods::deepsearch::adaptive::{AdaptiveConfig, SolutionCache};
use crate::engine::methods::deepsearch::search::config::{SearchConfig, StepMode};
use crate::engine::methods::deepsearch::{search_batch, Registration};
use crate::engine::methods::{state_key, Method, MethodError, Objective, Prelude, RoundStart};
use crate::engine::policy::Tokenizer;
use crate::engine::rl::config::TrainConfig;
use crate::engine::rl::groups::{Batch, GroupContext};
use crate::engine::rl::interrupt::{Halt, Phase};
use crate::engine::task::Problem;

pub struct DeepSearch {
    pub(crate) search: SearchConfig,
    pub(crate) adaptive: AdaptiveConfig,
    /// Adaptive training: the round (the hard set is re-filtered at the start of each),
    /// the solution cache and this round's registrations.
    pub(crate) round: u64,
    pub(crate) cache: SolutionCache,
    pub(crate) pending: Vec<Registration>,
}

impl DeepSearch {
    pub fn new(search: &SearchConfig, adaptive: &AdaptiveConfig) -> Self {
        Self {
            search: search.clone(),
            adaptive: adaptive.clone(),
            round: 0,
            cache: SolutionCache::default(),
            pending: Vec::new(),
        }
    }
}

impl Method for DeepSearch {
    fn phase(&self) -> Phase {
        Phase::Search
    }

    fn check(&self, tok: &Tokenizer, _engine: bool) -> Result<(), MethodError> {
        if self.search.step == StepMode::Newline && tok.newline().is_none() {
            return Err(MethodError(
                "search.step = \"newline\" needs a tokenizer with a single newline token; \
                 this one has none: set search.step = \"chunk\" (the paper's 256-token steps)"
                    .into(),
            ));
        }
        Ok(())
    }

    fn prelude(&mut self, ctx: Prelude) -> Result<Option<RoundStart>, Halt> {
        if !self.adaptive.enabled {
            return Ok(None);
        }
        Ok(Some(self.maybe_start_round(ctx)?))
    }

    fn batch(
        &mut self,
        ctx: &mut GroupContext<ChaCha8Rng>,
        problems: &[Problem],
        idx: &[usize],
    ) -> Result<Batch, Halt> {
        let cache = (self.adaptive.enabled && self.adaptive.cache).then_some(&self.cache);
        let (batch, regs) =
            search_batch(ctx, (&self.search, &self.adaptive), problems, idx, cache)?;
        self.pending.extend(regs);
        Ok(batch)
    }

    fn objective(&self, train: &TrainConfig) -> Objective {
        Objective::clipped(train, false)
    }

    fn save(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("round".into(), serde_json::json!(self.round));
        m.insert("cache".into(), serde_json::json!(self.cache));
        m.insert("pending".into(), serde_json::json!(self.pending));
        m
    }

    fn load(&mut self, state: &Map<String, Value>) -> Result<(), MethodError> {
        self.round = state_key(state, "round")?;
        self.cache = state_key(state, "cache")?;
        self.pending = state_key(state, "pending")?;
        Ok(())
    }
}
