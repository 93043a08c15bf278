//! Patterns for repository scopes (`team/*`) and protected refs
//! (`refs/tags/v*`).
//!
//! `*` matches any run of characters within one path segment, `**` any run
//! including `/`; everything else matches itself. There are no character
//! classes and no escapes, so a pattern means what it looks like.

/// One element of a pattern.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Token {
    Byte(u8),
    /// `*`: any run of bytes but `/`.
    Star,
    /// `**`: any run of bytes.
    DoubleStar,
}

/// Returns whether `text` matches `pattern`.
///
/// The pattern runs as a set of positions advanced together over the text
/// (a Thompson simulation), so a match costs at most
/// pattern length × text length steps, however many stars there are, and
/// no backtracking.
pub fn matches(pattern: &str, text: &str) -> bool {
    simulate(pattern, text).0
}

/// The match, and how many (position, byte) steps it took.
fn simulate(pattern: &str, text: &str) -> (bool, usize) {
    let tokens = tokenize(pattern.as_bytes());
    let mut steps = 0;
    // `live[i]`: the first i tokens can match the text read so far.
    let mut live = vec![false; tokens.len() + 1];
    let mut next = vec![false; tokens.len() + 1];
    live[0] = true;
    close(&tokens, &mut live);
    for &c in text.as_bytes() {
        next.iter_mut().for_each(|n| *n = false);
        let mut any = false;
        for (i, token) in tokens.iter().enumerate() {
            if !live[i] {
                continue;
            }
            steps += 1;
            let step = match *token {
                Token::Byte(b) if b == c => Some(i + 1),
                Token::Byte(_) => None,
                // A star stays where it is while it consumes.
                Token::Star if c != b'/' => Some(i),
                Token::Star => None,
                Token::DoubleStar => Some(i),
            };
            if let Some(to) = step {
                next[to] = true;
                any = true;
            }
        }
        if !any {
            return (false, steps);
        }
        close(&tokens, &mut next);
        std::mem::swap(&mut live, &mut next);
    }
    (live[tokens.len()], steps)
}

/// Adds the positions reachable without reading: past any star that may
/// match nothing. One pass suffices, since this only moves forward.
fn close(tokens: &[Token], live: &mut [bool]) {
    for i in 0..tokens.len() {
        if live[i] && !matches!(tokens[i], Token::Byte(_)) {
            live[i + 1] = true;
        }
    }
}

fn tokenize(pattern: &[u8]) -> Vec<Token> {
    let mut tokens = Vec::with_capacity(pattern.len());
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i..] {
            [b'*', b'*', ..] => {
                tokens.push(Token::DoubleStar);
                i += 2;
            }
            [b'*', ..] => {
                tokens.push(Token::Star);
                i += 1;
            }
            [b, ..] => {
                tokens.push(Token::Byte(b));
                i += 1;
            }
            [] => break,
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::{matches, simulate, tokenize};

    #[test]
    fn stars_stay_within_a_segment() {
        assert!(matches("refs/tags/v*", "refs/tags/v1.0"));
        assert!(matches("refs/heads/main", "refs/heads/main"));
        assert!(!matches("refs/heads/main", "refs/heads/main2"));
        assert!(!matches("refs/heads/*", "refs/heads/team/topic"));
        assert!(matches("refs/heads/**", "refs/heads/team/topic"));
        assert!(matches("team/*", "team/app"));
        assert!(!matches("team/*", "team/sub/app"));
        assert!(!matches("team/*", "teamx/app"));
        assert!(matches("*", "app"));
        assert!(!matches("*", "team/app"));
        assert!(matches("**", "team/app"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("a*b*c", "axxbyy"));
        assert!(!matches("", "x"));
    }

    #[test]
    fn many_stars_stay_cheap() {
        let pattern = "*a".repeat(30) + "b";
        let text = "a".repeat(200);
        assert!(!matches(&pattern, &text));
    }

    #[test]
    fn stars_next_to_each_other() {
        assert!(matches("***", "a/b"));
        assert!(matches("a**", "a"));
        assert!(matches("a/**/b", "a/x/y/b"));
        assert!(matches("a/**b", "a/b"));
        assert!(!matches("a/*/b", "a/x/y/b"));
        assert!(matches("**/b", "a/b"));
        assert!(!matches("*/b", "a/c/b"));
        assert!(matches("", ""));
    }

    // Attack: a repository owner writes 1,000 star-heavy protected_refs;
    // the memoised matcher, quadratic in the text per star, took 5 to 7
    // seconds per push decision. Each match is now pattern × text steps.
    #[test]
    fn star_heavy_patterns_cost_pattern_times_text() {
        let pattern = format!("refs/{}c", "*a".repeat(80));
        let text = format!("refs/{}b", "a".repeat(250));
        let (matched, steps) = simulate(&pattern, &text);
        assert!(!matched);
        let bound = tokenize(pattern.as_bytes()).len() * text.len();
        assert!(steps <= bound, "{steps} steps, more than {bound}");
    }
}
