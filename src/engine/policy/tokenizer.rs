//! A character-level tokenizer over the Countdown alphabet, for the tiny default policy.
use serde::{Deserialize, Serialize};

/// Padding, beginning and end of sequence occupy the first ids.
pub const PAD: u32 = 0;
pub const BOS: u32 = 1;
pub const EOS: u32 = 2;
const SPECIALS: usize = 3;

/// Every character the Countdown prompts and both answer formats use.
pub const COUNTDOWN_ALPHABET: &str = "0123456789+-*/=() :,\nabcdefghijklmnopqrstuvwxyz<>";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CharTokenizer {
    alphabet: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("character {found:?} is not in the tokenizer's alphabet")]
pub struct UnknownChar {
    pub found: char,
}

/// Text either tokenizer could not encode.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error(transparent)]
    Char(#[from] UnknownChar),
    #[error(transparent)]
    Hf(#[from] super::hf_tokenizer::HfTokenizerError),
}

impl Default for CharTokenizer {
    fn default() -> Self {
        Self::new(COUNTDOWN_ALPHABET)
    }
}

impl CharTokenizer {
    pub fn new(alphabet: &str) -> Self {
        Self {
            alphabet: alphabet.to_string(),
        }
    }

    /// The characters after the special ids, in id order.
    pub fn alphabet(&self) -> &str {
        &self.alphabet
    }

    /// Number of ids including the specials.
    pub fn vocab_size(&self) -> usize {
        SPECIALS + self.alphabet.chars().count()
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>, UnknownChar> {
        text.chars()
            .map(|c| {
                self.alphabet
                    .chars()
                    .position(|a| a == c)
                    .map(|i| (i + SPECIALS) as u32)
                    .ok_or(UnknownChar { found: c })
            })
            .collect()
    }

    /// Decodes ids to text; special ids are dropped.
    pub fn decode(&self, ids: &[u32]) -> String {
        ids.iter()
            .filter_map(|&id| {
                (id as usize)
                    .checked_sub(SPECIALS)
                    .and_then(|i| self.alphabet.chars().nth(i))
            })
            .collect()
    }

    /// Id of the step delimiter (newline).
    pub fn newline(&self) -> u32 {
        self.encode("\n").map(|v| v[0]).unwrap_or(EOS)
    }
}

/// The policy's tokenizer: arbor's character tokenizer, or a checkpoint's tokenizer.json.
#[derive(Clone, Debug, PartialEq)]
pub enum Tokenizer {
    Char(CharTokenizer),
    Hf(Box<super::hf_tokenizer::HfTokenizer>),
}

impl Default for Tokenizer {
    fn default() -> Self {
        Tokenizer::Char(CharTokenizer::default())
    }
}

impl From<CharTokenizer> for Tokenizer {
    fn from(c: CharTokenizer) -> Self {
        Tokenizer::Char(c)
    }
}

impl Tokenizer {
    pub fn vocab_size(&self) -> usize {
        match self {
            Tokenizer::Char(c) => c.vocab_size(),
            Tokenizer::Hf(h) => h.vocab_size(),
        }
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        match self {
            Tokenizer::Char(c) => Ok(c.encode(text)?),
            Tokenizer::Hf(h) => Ok(h.encode(text)?),
        }
    }

    pub fn decode(&self, ids: &[u32]) -> String {
        match self {
            Tokenizer::Char(c) => c.decode(ids),
            Tokenizer::Hf(h) => h.decode(ids),
        }
    }

    /// The id generation stops at.
    pub fn eos(&self) -> u32 {
        match self {
            Tokenizer::Char(_) => EOS,
            Tokenizer::Hf(h) => h.eos,
        }
    }

    /// The newline id that ends a reasoning step, if the vocabulary has a single one.
    pub fn newline(&self) -> Option<u32> {
        match self {
            Tokenizer::Char(c) => Some(c.newline()),
            Tokenizer::Hf(h) => h.newline(),
        }
    }

    /// A problem's prompt as the model's input ids (BOS, chat markers where the model
    /// has them). Text the tokenizer cannot encode is dropped rather than crashing.
    pub fn prompt_ids(&self, text: &str) -> Vec<u32> {
        match self {
            Tokenizer::Char(c) => {
                let mut ids = vec![BOS];
                ids.extend(c.encode(text).unwrap_or_default());
                ids
            }
            Tokenizer::Hf(h) => h.prompt_ids(text).unwrap_or_default(),
        }
    }

    pub fn as_char(&self) -> Option<&CharTokenizer> {
        match self {
            Tokenizer::Char(c) => Some(c),
            Tokenizer::Hf(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_unknown() {
        let t = CharTokenizer::default();
        let ids = t.encode("3 7 12:72\n12-7=5\nans 5").unwrap();
        assert_eq!(t.decode(&ids), "3 7 12:72\n12-7=5\nans 5");
        assert!(ids.iter().all(|&i| (i as usize) < t.vocab_size()));
        assert_eq!(t.encode("3é"), Err(UnknownChar { found: 'é' }));
        assert_eq!(t.decode(&[BOS, t.newline(), EOS]), "\n");
    }
}
