//! Themes: TOML files in themes/ (embedded), chosen by name; NO_COLOR selects mono.
use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

const BUILT_IN: [(&str, &str); 3] = [
    ("dark", include_str!("../../themes/dark.toml")),
    ("light", include_str!("../../themes/light.toml")),
    ("mono", include_str!("../../themes/mono.toml")),
];

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    name: String,
    foreground: String,
    muted: String,
    accent: String,
    correct: String,
    wrong: String,
    confident_wrong: String,
    recorded: String,
    selection_bg: String,
    selection_fg: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Theme {
    pub name: String,
    pub text: Style,
    pub muted: Style,
    pub accent: Style,
    pub correct: Style,
    pub wrong: Style,
    pub confident_wrong: Style,
    pub recorded: Style,
    pub selected: Style,
}

fn color(field: &str, v: &str) -> Result<Color, String> {
    v.parse::<Color>().map_err(|_| {
        format!("{field} = {v:?} is not a colour (a name such as \"red\" or \"#a06000\")")
    })
}

impl Theme {
    pub fn names() -> Vec<&'static str> {
        BUILT_IN.iter().map(|(n, _)| *n).collect()
    }

    /// A built-in theme, or a TOML file path.
    pub fn load(name_or_path: &str) -> Result<Theme, String> {
        let text = match BUILT_IN.iter().find(|(n, _)| *n == name_or_path) {
            Some((_, t)) => t.to_string(),
            None if std::path::Path::new(name_or_path).exists() => {
                std::fs::read_to_string(name_or_path)
                    .map_err(|e| format!("theme {name_or_path}: {e}"))?
            }
            None => {
                return Err(format!(
                "unknown theme {name_or_path:?}; built-in themes: {} (or a path to a TOML file)",
                Self::names().join(", ")
            ))
            }
        };
        let f: ThemeFile =
            toml::from_str(&text).map_err(|e| format!("theme {name_or_path}: {e}"))?;
        let fg = color("foreground", &f.foreground)?;
        Ok(Theme {
            name: f.name.clone(),
            text: Style::default().fg(fg),
            muted: Style::default().fg(color("muted", &f.muted)?),
            accent: Style::default()
                .fg(color("accent", &f.accent)?)
                .add_modifier(Modifier::BOLD),
            correct: Style::default().fg(color("correct", &f.correct)?),
            wrong: Style::default().fg(color("wrong", &f.wrong)?),
            confident_wrong: Style::default()
                .fg(color("confident_wrong", &f.confident_wrong)?)
                .add_modifier(Modifier::BOLD),
            recorded: Style::default().fg(color("recorded", &f.recorded)?),
            selected: Style::default()
                .bg(color("selection_bg", &f.selection_bg)?)
                .fg(color("selection_fg", &f.selection_fg)?)
                .add_modifier(Modifier::REVERSED),
        })
    }

    /// The theme to use: mono when NO_COLOR is set (https://no-color.org), else `name`.
    pub fn choose(name: &str) -> Result<Theme, String> {
        if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
            return Self::load("mono");
        }
        Self::load(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_themes_load_and_unknown_is_named() {
        for n in Theme::names() {
            assert_eq!(Theme::load(n).unwrap().name, n);
        }
        let e = Theme::load("neon").unwrap_err();
        assert!(e.contains("neon") && e.contains("dark"), "{e}");
    }
}
