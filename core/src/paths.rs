//! Delegation path rules: shell-style patterns matched segment by segment (as python-tuf's
//! fnmatch-based matching does), and the hash that places a target in a TAP 15 bin.

use sha2::{Digest, Sha256};

/// `pattern` matches `target` when both have the same number of `/`-separated segments and
/// each segment matches. So `*` never crosses a `/`: `a/*` matches `a/b` but not `a/b/c`.
pub fn glob_match_path(pattern: &str, target: &str) -> bool {
    let pats: Vec<&str> = pattern.split('/').collect();
    let parts: Vec<&str> = target.split('/').collect();
    pats.len() == parts.len() && pats.iter().zip(&parts).all(|(p, t)| glob_match(p, t))
}

#[derive(Debug)]
enum Token {
    Star,
    Any,
    Lit(char),
    Class {
        negated: bool,
        items: Vec<(char, char)>,
    },
}

fn tokenize(pattern: &str) -> Vec<Token> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                if !matches!(tokens.last(), Some(Token::Star)) {
                    tokens.push(Token::Star);
                }
                i += 1;
            }
            '?' => {
                tokens.push(Token::Any);
                i += 1;
            }
            '[' => match parse_class(&chars, i) {
                Some((token, next)) => {
                    tokens.push(token);
                    i = next;
                }
                None => {
                    tokens.push(Token::Lit('['));
                    i += 1;
                }
            },
            c => {
                tokens.push(Token::Lit(c));
                i += 1;
            }
        }
    }
    tokens
}

/// A `[...]` class starting at `open`, as fnmatch reads it: `!` negates, a `]` right after the
/// opening (or after `!`) is literal, `a-z` is a range. No closing `]` → the `[` is literal.
fn parse_class(chars: &[char], open: usize) -> Option<(Token, usize)> {
    let mut j = open + 1;
    let negated = chars.get(j) == Some(&'!');
    if negated {
        j += 1;
    }
    let start = j;
    if chars.get(j) == Some(&']') {
        j += 1;
    }
    while j < chars.len() && chars[j] != ']' {
        j += 1;
    }
    if j >= chars.len() {
        return None;
    }
    let body = &chars[start..j];
    let mut items = Vec::new();
    let mut k = 0;
    while k < body.len() {
        if k + 2 < body.len() && body[k + 1] == '-' {
            items.push((body[k], body[k + 2]));
            k += 3;
        } else {
            items.push((body[k], body[k]));
            k += 1;
        }
    }
    Some((Token::Class { negated, items }, j + 1))
}

fn token_matches(token: &Token, c: char) -> bool {
    match token {
        Token::Any => true,
        Token::Lit(l) => *l == c,
        Token::Class { negated, items } => {
            items.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
        }
        Token::Star => false,
    }
}

/// Whole-string shell pattern match. Linear backtracking over the last `*`, so a hostile
/// pattern costs O(pattern × text), never exponential.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let tokens = tokenize(pattern);
    let text: Vec<char> = text.chars().collect();
    let (mut t, mut p) = (0usize, 0usize);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match tokens.get(p) {
            Some(Token::Star) => {
                backtrack = Some((p + 1, t));
                p += 1;
            }
            Some(tok) if token_matches(tok, text[t]) => {
                p += 1;
                t += 1;
            }
            _ => match backtrack {
                Some((bp, bt)) => {
                    p = bp;
                    t = bt + 1;
                    backtrack = Some((bp, bt + 1));
                }
                None => return false,
            },
        }
    }
    tokens[p..].iter().all(|tok| matches!(tok, Token::Star))
}

/// TAP 15: the bin of `target` is the first `bit_length` bits of SHA-256(target path).
pub fn bin_index(target: &str, bit_length: u32) -> u64 {
    let digest = Sha256::digest(target.as_bytes());
    let prefix = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    u64::from(prefix) >> (32 - bit_length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_do_not_cross_slashes() {
        assert!(glob_match_path("a/*", "a/b"));
        assert!(!glob_match_path("a/*", "a/b/c"));
        assert!(glob_match_path("*/*.bin", "ecu/x.bin"));
        assert!(!glob_match_path("*", "dir/file"));
        assert!(glob_match_path("*", "file"));
        assert!(glob_match_path("a/*/c", "a/bb/c"));
    }

    #[test]
    fn fnmatch_features() {
        assert!(glob_match("f?le.[ct]xt", "file.txt"));
        assert!(!glob_match("f?le.[!ct]xt", "file.txt"));
        assert!(glob_match("[a-c]*", "cat"));
        assert!(!glob_match("[a-c]*", "dog"));
        assert!(glob_match("a[", "a["));
        assert!(glob_match("[]]x", "]x"));
        assert!(glob_match("*.tar.gz", ".tar.gz"));
        assert!(!glob_match("abc", "abcd"));
        assert!(glob_match("**a*", "bbba"));
    }

    #[test]
    fn hostile_pattern_is_not_exponential() {
        let pattern = "*a".repeat(50) + "b";
        let text = "a".repeat(5000);
        assert!(!glob_match(&pattern, &text));
    }

    #[test]
    fn bins_take_the_leading_hash_bits() {
        // sha256("") starts e3b0c442: 0xe3 = 1110_0011.
        assert_eq!(bin_index("", 1), 1);
        assert_eq!(bin_index("", 4), 0xe);
        assert_eq!(bin_index("", 8), 0xe3);
        assert_eq!(bin_index("", 32), 0xe3b0c442);
    }
}
