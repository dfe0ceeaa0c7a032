//! A Hugging Face `tokenizer.json` (the tokenizers crate, pure Rust), with the chat
//! template's role markers and the end-of-sequence id a real checkpoint declares.
//!
//! arbor does not run Jinja: it recognises the role markers of the chat templates the
//! Qwen2 family uses (ChatML `<|im_start|>`, and DeepSeek-R1-Distill's `<｜User｜>` /
//! `<｜Assistant｜>`) and formats a single user turn with them.
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::tokenizer::{CharTokenizer, BOS, EOS, PAD};

#[derive(Debug, thiserror::Error)]
pub enum HfTokenizerError {
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    /// The char tokenizer could not be built as a tokenizers model.
    #[error("{0}")]
    Build(tokenizers::Error),
    #[error("{0}")]
    Encode(tokenizers::Error),
    /// `tokenizer.json` could not be written.
    #[error("{path}: {error}")]
    Save {
        path: PathBuf,
        error: tokenizers::Error,
    },
    #[error("{path}: {error}")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// How one user turn is wrapped before the model answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatMarkers {
    /// Text before the user's message (e.g. `<|im_start|>user\n`).
    pub user: String,
    /// Text after it, ending where the assistant starts (e.g.
    /// `<|im_end|>\n<|im_start|>assistant\n`).
    pub assistant: String,
}

impl ChatMarkers {
    /// The markers of a chat template, recognised by its role tokens.
    pub fn from_template(template: &str) -> Option<Self> {
        if template.contains("<|im_start|>") {
            Some(Self {
                user: "<|im_start|>user\n".into(),
                assistant: "<|im_end|>\n<|im_start|>assistant\n".into(),
            })
        } else if template.contains("<｜User｜>") {
            Some(Self {
                user: "<｜User｜>".into(),
                assistant: "<｜Assistant｜>".into(),
            })
        } else {
            None
        }
    }
}

#[derive(Clone)]
pub struct HfTokenizer {
    pub inner: tokenizers::Tokenizer,
    /// Generation stops at this id.
    pub eos: u32,
    /// Prepended to prompts when the model uses one.
    pub bos: Option<u32>,
    pub chat: Option<ChatMarkers>,
    /// The raw chat template, kept so a saved checkpoint carries it on.
    pub chat_template: Option<String>,
}

impl std::fmt::Debug for HfTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HfTokenizer")
            .field("vocab", &self.inner.get_vocab_size(true))
            .field("eos", &self.eos)
            .field("bos", &self.bos)
            .field("chat", &self.chat)
            .finish()
    }
}

impl PartialEq for HfTokenizer {
    fn eq(&self, o: &Self) -> bool {
        self.eos == o.eos
            && self.bos == o.bos
            && self.chat == o.chat
            && self.inner.get_vocab(true) == o.inner.get_vocab(true)
    }
}

fn read_json(path: &Path) -> Result<Option<Value>, HfTokenizerError> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| HfTokenizerError::Invalid {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| HfTokenizerError::Invalid {
            path: path.to_path_buf(),
            message: format!("not JSON: {e}"),
        })
}

/// A token given as a string or as `{"content": ...}` in tokenizer_config.json.
fn token_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content")?.as_str().map(str::to_string),
        _ => None,
    }
}

/// The first id of an `eos_token_id` given as a number or a list.
fn first_id(v: Option<&Value>) -> Option<u32> {
    match v? {
        Value::Number(n) => n.as_u64().map(|x| x as u32),
        Value::Array(a) => a.first()?.as_u64().map(|x| x as u32),
        _ => None,
    }
}

impl HfTokenizer {
    /// Loads `dir/tokenizer.json` and the ids and chat template declared beside it
    /// (tokenizer_config.json, generation_config.json, config.json).
    pub fn load(dir: &Path) -> Result<Self, HfTokenizerError> {
        let path = dir.join("tokenizer.json");
        if !path.exists() {
            return Err(HfTokenizerError::Invalid {
                path,
                message: "missing: a checkpoint folder needs its tokenizer.json".into(),
            });
        }
        let inner =
            tokenizers::Tokenizer::from_file(&path).map_err(|e| HfTokenizerError::Invalid {
                path: path.clone(),
                message: format!("not a tokenizers file: {e}"),
            })?;
        let tcfg = read_json(&dir.join("tokenizer_config.json"))?;
        let gen = read_json(&dir.join("generation_config.json"))?;
        let mcfg = read_json(&dir.join("config.json"))?;
        let by_name = |v: Option<&Value>| token_text(v).and_then(|t| inner.token_to_id(&t));
        let eos = first_id(gen.as_ref().and_then(|g| g.get("eos_token_id")))
            .or_else(|| by_name(tcfg.as_ref().and_then(|t| t.get("eos_token"))))
            .or_else(|| first_id(mcfg.as_ref().and_then(|c| c.get("eos_token_id"))))
            .ok_or_else(|| HfTokenizerError::Invalid {
                path: dir.to_path_buf(),
                message: "no end-of-sequence id: set eos_token_id in generation_config.json \
                          or config.json, or eos_token in tokenizer_config.json"
                    .into(),
            })?;
        let bos = tcfg
            .as_ref()
            .filter(|t| t.get("add_bos_token").and_then(Value::as_bool) == Some(true))
            .and_then(|t| by_name(t.get("bos_token")));
        let chat_template = tcfg
            .as_ref()
            .and_then(|t| t.get("chat_template"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let chat = chat_template
            .as_deref()
            .and_then(ChatMarkers::from_template);
        Ok(Self {
            inner,
            eos,
            bos,
            chat,
            chat_template,
        })
    }

    /// The character tokenizer this `tokenizer.json` was written from, when it is one
    /// arbor wrote ([`HfTokenizer::from_char`]: the three specials, then one id per
    /// character, no merges): exports made before arbor kept its tokenizer in
    /// `config.json` are read back as what they are, so they export to GGUF again.
    pub fn as_arbor_char(&self) -> Option<CharTokenizer> {
        let vocab = self.inner.get_vocab(true);
        let mut by_id: Vec<Option<&str>> = vec![None; vocab.len()];
        for (t, &id) in &vocab {
            *by_id.get_mut(id as usize)? = Some(t.as_str());
        }
        if by_id.iter().take(3).copied().collect::<Option<Vec<_>>>()? != ["<pad>", "<s>", "</s>"] {
            return None;
        }
        let alphabet: String = by_id[3..]
            .iter()
            .map(|t| {
                let t = (*t)?;
                let mut cs = t.chars();
                match (cs.next(), cs.next()) {
                    (Some(c), None) => Some(c),
                    _ => None,
                }
            })
            .collect::<Option<String>>()?;
        let c = CharTokenizer::new(&alphabet);
        // The same file arbor would write for it, merges and all.
        let again = Self::from_char(&c).ok()?;
        (again.inner.to_string(false).ok()? == self.inner.to_string(false).ok()?).then_some(c)
    }

    /// The char tokenizer as a tokenizers BPE model without merges (every character a
    /// token, the same ids), so arbor's own checkpoints load in transformers.
    pub fn from_char(c: &CharTokenizer) -> Result<Self, HfTokenizerError> {
        use tokenizers::models::bpe::BPE;
        let mut vocab: tokenizers::models::bpe::Vocab = Default::default();
        for (i, name) in ["<pad>", "<s>", "</s>"].iter().enumerate() {
            vocab.insert(name.to_string(), i as u32);
        }
        for (i, ch) in c.alphabet().chars().enumerate() {
            vocab.insert(ch.to_string(), (i + 3) as u32);
        }
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, Vec::new())
            .build()
            .map_err(HfTokenizerError::Build)?;
        let mut inner = tokenizers::Tokenizer::new(bpe);
        inner.with_decoder(Some(tokenizers::decoders::fuse::Fuse::new()));
        inner
            .add_special_tokens(vec![
                tokenizers::AddedToken::from("<pad>", true),
                tokenizers::AddedToken::from("<s>", true),
                tokenizers::AddedToken::from("</s>", true),
            ])
            .map_err(HfTokenizerError::Build)?;
        debug_assert_eq!(inner.token_to_id("</s>"), Some(EOS));
        let _ = (PAD, BOS);
        Ok(Self {
            inner,
            eos: EOS,
            bos: Some(BOS),
            chat: None,
            chat_template: None,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>, HfTokenizerError> {
        self.inner
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(HfTokenizerError::Encode)
    }

    pub fn decode(&self, ids: &[u32]) -> String {
        self.inner.decode(ids, true).unwrap_or_default()
    }

    /// The id of a single newline, if the vocabulary has one.
    pub fn newline(&self) -> Option<u32> {
        match self.encode("\n").ok()?.as_slice() {
            [id] => Some(*id),
            _ => None,
        }
    }

    /// A prompt as the model expects it: BOS if it uses one, one user turn in the chat
    /// markers if it has a chat template.
    pub fn prompt_ids(&self, text: &str) -> Result<Vec<u32>, HfTokenizerError> {
        let wrapped = match &self.chat {
            Some(c) => format!("{}{text}{}", c.user, c.assistant),
            None => text.to_string(),
        };
        let mut ids: Vec<u32> = self.bos.into_iter().collect();
        ids.extend(self.encode(&wrapped)?);
        Ok(ids)
    }

    /// Writes tokenizer.json and tokenizer_config.json into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), HfTokenizerError> {
        self.inner
            .save(dir.join("tokenizer.json"), true)
            .map_err(|error| HfTokenizerError::Save {
                path: dir.join("tokenizer.json"),
                error,
            })?;
        let name = |id: u32| self.inner.id_to_token(id);
        let mut cfg = serde_json::json!({
            "tokenizer_class": "PreTrainedTokenizerFast",
            "eos_token": name(self.eos),
            "add_bos_token": self.bos.is_some(),
            "clean_up_tokenization_spaces": false,
            "model_max_length": 131072,
        });
        if let Some(b) = self.bos {
            cfg["bos_token"] = name(b).into();
        }
        if let Some(p) = self.inner.id_to_token(PAD).filter(|_| self.chat.is_none()) {
            cfg["pad_token"] = p.into();
        }
        if let Some(t) = &self.chat_template {
            cfg["chat_template"] = t.clone().into();
        }
        let path = dir.join("tokenizer_config.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&cfg).unwrap_or_default())
            .map_err(|error| HfTokenizerError::Write { path, error })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_char_tokenizer_as_a_tokenizers_file_keeps_every_id() {
        let c = CharTokenizer::default();
        let h = HfTokenizer::from_char(&c).unwrap();
        let text = "3 7 12:72\n12-7=5\n<answer>(3+5)*2</answer>";
        assert_eq!(h.encode(text).unwrap(), c.encode(text).unwrap());
        assert_eq!(h.decode(&c.encode(text).unwrap()), text);
        assert_eq!(h.vocab_size(), c.vocab_size());
        assert_eq!(h.newline(), Some(c.newline()));
        let dir = tempfile::tempdir().unwrap();
        h.save(dir.path()).unwrap();
        std::fs::write(
            dir.path().join("generation_config.json"),
            r#"{"eos_token_id": [2, 0]}"#,
        )
        .unwrap();
        let back = HfTokenizer::load(dir.path()).unwrap();
        assert_eq!(back.encode(text).unwrap(), c.encode(text).unwrap());
        assert_eq!((back.eos, back.bos), (EOS, Some(BOS)));
    }

    #[test]
    fn chat_markers_are_recognised() {
        let m =
            ChatMarkers::from_template("{% for m in messages %}<|im_start|>{{m.role}}").unwrap();
        assert_eq!(m.user, "<|im_start|>user\n");
        assert!(
            ChatMarkers::from_template("{{bos_token}}<｜User｜>{{c}}<｜Assistant｜>").is_some()
        );
        assert!(ChatMarkers::from_template("plain").is_none());
    }

    #[test]
    fn a_missing_tokenizer_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let e = HfTokenizer::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("tokenizer.json"), "{e}");
    }
}
