//! A stored search replayed step by step from the store alone (no model): the step's
//! types, shared by DeepSearch's replay (expansions) and search distillation's
//! (simulations).
/// What one step of a replay is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayUnit {
    /// A DeepSearch expansion: a frontier node expanded, at most one terminal backed up.
    Expansion,
    /// A search-distillation simulation: a descent by pUCT to a leaf, the leaf expanded
    /// unless terminal, one value backed up from the leaf to the root.
    Simulation,
}

impl ReplayUnit {
    pub fn word(self) -> &'static str {
        match self {
            ReplayUnit::Expansion => "expansion",
            ReplayUnit::Simulation => "simulation",
        }
    }

    /// The short form for narrow screens.
    pub fn short(self) -> &'static str {
        match self {
            ReplayUnit::Expansion => "exp",
            ReplayUnit::Simulation => "sim",
        }
    }
}

/// One step of a search (an expansion or a simulation) and the state after it.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayStep {
    pub unit: ReplayUnit,
    /// Expansions made up to and including this step (a node whose `expanded_at` is at
    /// least this was not yet expanded).
    pub expansions_done: u32,
    /// 0-based, in the order the search made its steps.
    pub expansion: u32,
    /// The expanded node (an expansion) or the leaf the simulation reached.
    pub node: u32,
    /// The expanded node's frontier score and the best score it was chosen over (none
    /// for the root and for UCT selection).
    pub frontier_score: Option<f32>,
    pub runner_up: Option<f32>,
    /// The children this expansion produced, in creation order.
    pub children: Vec<u32>,
    /// The node whose value was backed up, with that value, if any: the picked terminal
    /// (an expansion) or the leaf (a simulation: its reward, or its value estimate).
    pub picked: Option<(u32, f32)>,
    /// q and N of every node by id after this step (q as the search stores it: the
    /// backed-up value for DeepSearch, the sum W for distillation); none for nodes not
    /// yet created.
    pub state: Vec<Option<(f64, u32)>>,
}

/// Why a stored tree cannot be replayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("this tree stores no expansion order (written before schema 3, or not a search tree)")]
    NoExpansionOrder,
    #[error("expansion order has a gap at {at} (node {node} says {says:?})")]
    Gap {
        at: usize,
        node: u32,
        says: Option<u32>,
    },
    #[error("node {node}'s parent links form a cycle")]
    Cycle { node: u32 },
    #[error(
        "this tree stores no simulations (written before schema 4, or by the test-time search)"
    )]
    NoSimulations,
    #[error("simulation {at} names node {node}, which the tree does not have")]
    UnknownNode { at: usize, node: u32 },
}

/// Root..id by the parent links `parent` gives, in a tree of `len` nodes; a cycle is an
/// error, never a hang.
pub fn root_path(
    parent: impl Fn(u32) -> Option<u32>,
    id: u32,
    len: usize,
) -> Result<Vec<u32>, ReplayError> {
    let mut path = vec![id];
    let mut cur = id;
    while let Some(p) = parent(cur) {
        if path.len() > len {
            return Err(ReplayError::Cycle { node: id });
        }
        path.push(p);
        cur = p;
    }
    path.reverse();
    Ok(path)
}
