//! Splits a filter into tokens, remembering the 1-based column of each.

use crate::FilterError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    LParen,
    RParen,
    Comma,
    Op(&'static str),
    /// A quoted string, escapes resolved.
    Str(String),
    /// A bare run of characters: words, numbers, paths (`items[0].sku`), `after:...`.
    Word(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub column: usize,
}

const OPS: &[&str] = &["!=", "<=", ">=", "=", "<", ">", "~"];

fn is_word_char(c: char) -> bool {
    !c.is_whitespace()
        && !matches!(
            c,
            '(' | ')' | ',' | '"' | '\'' | '=' | '!' | '<' | '>' | '~'
        )
}

pub(crate) fn lex(input: &str) -> Result<Vec<Token>, FilterError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let simple = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            ',' => Some(Tok::Comma),
            _ => None,
        };
        if let Some(tok) = simple {
            out.push(Token { tok, column });
            i += 1;
            continue;
        }
        if let Some(op) = OPS.iter().find(|op| {
            op.chars()
                .enumerate()
                .all(|(k, oc)| chars.get(i + k) == Some(&oc))
        }) {
            out.push(Token {
                tok: Tok::Op(op),
                column,
            });
            i += op.len();
            continue;
        }
        if c == '!' {
            return Err(FilterError::at(
                column,
                "expected `!=` (use `not` to negate)",
            ));
        }
        if c == '"' || c == '\'' {
            let quote = c;
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(FilterError::at(
                            column,
                            format!("unterminated string: expected a closing {quote}"),
                        ))
                    }
                    Some('\\') => {
                        match chars.get(i + 1) {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some(&e) => s.push(e),
                            None => {
                                return Err(FilterError::at(
                                    i + 1,
                                    "unterminated escape at end of filter",
                                ))
                            }
                        }
                        i += 2;
                    }
                    Some(&q) if q == quote => {
                        i += 1;
                        break;
                    }
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            out.push(Token {
                tok: Tok::Str(s),
                column,
            });
            continue;
        }
        let start = i;
        while i < chars.len() && is_word_char(chars[i]) {
            i += 1;
        }
        out.push(Token {
            tok: Tok::Word(chars[start..i].iter().collect()),
            column,
        });
    }
    Ok(out)
}
