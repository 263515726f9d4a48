//! The `--message` template: parsed once at start, rendered on every tick without re-parsing.

use std::fmt::{self, Write};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Local, SecondsFormat};

/// What a template can show about the event being sent.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// The id this event gets.
    pub seq: u64,
    /// Streams connected when it is sent.
    pub consumers: usize,
    pub now: SystemTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Time,
    Unix,
    UnixMs,
    Seq,
    Consumers,
}

const FIELDS: [(&str, Field); 5] = [
    ("time", Field::Time),
    ("unix", Field::Unix),
    ("unix_ms", Field::UnixMs),
    ("seq", Field::Seq),
    ("consumers", Field::Consumers),
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(Field),
}

/// A parsed template: literal text and fields, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// Why a template was refused; shown by clap after the flag's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    UnknownField(String),
    Unclosed,
    LoneClosingBrace,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let valid: Vec<String> = FIELDS
            .iter()
            .map(|(name, _)| format!("{{{name}}}"))
            .collect();
        match self {
            TemplateError::UnknownField(name) => write!(
                f,
                "unknown field {{{name}}}; valid fields: {} (write {{{{ and }}}} for literal braces)",
                valid.join(" ")
            ),
            TemplateError::Unclosed => {
                f.write_str("a '{' is never closed (write {{ for a literal brace)")
            }
            TemplateError::LoneClosingBrace => {
                f.write_str("a '}' has no opening '{' (write }} for a literal brace)")
            }
        }
    }
}

impl std::error::Error for TemplateError {}

impl FromStr for Template {
    type Err = TemplateError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(TemplateError::Unclosed),
                        }
                    }
                    let field = FIELDS
                        .iter()
                        .find(|(known, _)| *known == name)
                        .map(|&(_, field)| field)
                        .ok_or(TemplateError::UnknownField(name))?;
                    if !literal.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Field(field));
                }
                '}' => return Err(TemplateError::LoneClosingBrace),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Template { pieces })
    }
}

impl Template {
    /// The message for one event.
    pub fn render(&self, context: &Context) -> String {
        self.render_around_seq(context)
            .join(&context.seq.to_string())
    }

    /// The rendered text cut where `{seq}` goes (joined with the id, it is `render`): for an
    /// engine that assigns the id only when it stores the event (`--redis`).
    pub fn render_around_seq(&self, context: &Context) -> Vec<String> {
        let mut parts = vec![String::new()];
        let since_epoch = context.now.duration_since(UNIX_EPOCH).unwrap_or_default();
        for piece in &self.pieces {
            let out = parts.last_mut().expect("never empty");
            // Writing to a String cannot fail.
            let _ = match piece {
                Piece::Text(text) => out.write_str(text),
                Piece::Field(Field::Time) => out.write_str(
                    &DateTime::<Local>::from(context.now)
                        .to_rfc3339_opts(SecondsFormat::Secs, false),
                ),
                Piece::Field(Field::Unix) => write!(out, "{}", since_epoch.as_secs()),
                Piece::Field(Field::UnixMs) => write!(out, "{}", since_epoch.as_millis()),
                Piece::Field(Field::Seq) => {
                    parts.push(String::new());
                    Ok(())
                }
                Piece::Field(Field::Consumers) => write!(out, "{}", context.consumers),
            };
        }
        parts
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn context() -> Context {
        Context {
            seq: 7,
            consumers: 3,
            now: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        }
    }

    #[test]
    fn renders_every_field_and_literal_braces() {
        let template: Template = "#{seq} to {consumers} at {unix}/{unix_ms} {{x}}"
            .parse()
            .unwrap();
        assert_eq!(
            template.render(&context()),
            "#7 to 3 at 1700000000/1700000000123 {x}"
        );
    }

    #[test]
    fn time_is_rfc3339_in_local_time() {
        let template: Template = "{time}".parse().unwrap();
        let rendered = template.render(&context());
        let parsed = DateTime::parse_from_rfc3339(&rendered).unwrap();
        assert_eq!(parsed.timestamp(), 1_700_000_000);
    }

    #[test]
    fn refuses_unknown_fields_and_stray_braces() {
        let unknown = "{nope}".parse::<Template>().unwrap_err();
        assert_eq!(unknown, TemplateError::UnknownField("nope".into()));
        let message = unknown.to_string();
        assert!(
            message.contains("{nope}") && message.contains("{consumers}"),
            "{message}"
        );
        assert_eq!("{time".parse::<Template>(), Err(TemplateError::Unclosed));
        assert_eq!(
            "a}b".parse::<Template>(),
            Err(TemplateError::LoneClosingBrace)
        );
    }
}
