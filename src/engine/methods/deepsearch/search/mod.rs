//! DeepSearch's tree search: the paper's math as pure functions (selection, frontier,
//! terminal pick, backup) over node statistics.
pub mod backup;
pub mod config;
pub mod frontier;
pub mod mcts;
pub mod pick;
pub mod replay;
pub mod uct;
