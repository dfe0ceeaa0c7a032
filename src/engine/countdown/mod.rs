//! Countdown
