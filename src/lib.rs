//! arbor: DeepSearch (MCTS inside RL training) for small reasoning models, with a terminal
//! explorer. `engine` computes, `store` persists, `app` draws; `main.rs` wires them.
pub mod app;
pub mod engine;
pub mod store;
