//! Arbitrary bytes into the math task's boxed-answer extraction and normalisation.
#![no_main]
use arbor::engine::task::math::{check_answer, normalize_final_answer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut mid = text.len() / 2;
    while !text.is_char_boundary(mid) {
        mid -= 1;
    }
    let (a, b) = text.split_at(mid);
    let _ = normalize_final_answer(&text);
    let _ = check_answer(a, b);
    let _ = check_answer(&text, "42");
});
