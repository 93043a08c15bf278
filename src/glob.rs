//! Patterns for repository scopes (`team/*`) and protected refs
//! (`refs/tags/v*`).
//!
//! `*` matches any run of characters within one path segment, `**` any run
//! including `/`; everything else matches itself. There are no character
//! classes and no escapes, so a pattern means what it looks like.

/// Returns whether `text` matches `pattern`.
///
/// Memoised over (pattern position, text position), so a pattern with many
/// stars costs at most pattern length × text length steps, never exponential.
pub fn matches(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.as_bytes(), text.as_bytes());
    let mut memo = vec![None; (pattern.len() + 1) * (text.len() + 1)];
    Matcher {
        pattern,
        text,
        memo: &mut memo,
    }
    .at(0, 0)
}

struct Matcher<'a> {
    pattern: &'a [u8],
    text: &'a [u8],
    memo: &'a mut [Option<bool>],
}

impl Matcher<'_> {
    fn at(&mut self, p: usize, t: usize) -> bool {
        let slot = p * (self.text.len() + 1) + t;
        if let Some(known) = self.memo[slot] {
            return known;
        }
        let result = match &self.pattern[p..] {
            [] => t == self.text.len(),
            [b'*', b'*', ..] => (t..=self.text.len()).any(|skip| self.at(p + 2, skip)),
            [b'*', ..] => {
                let segment_end = self.text[t..]
                    .iter()
                    .position(|&c| c == b'/')
                    .map_or(self.text.len(), |i| t + i);
                (t..=segment_end).any(|skip| self.at(p + 1, skip))
            }
            [first, ..] => self.text.get(t) == Some(first) && self.at(p + 1, t + 1),
        };
        self.memo[slot] = Some(result);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

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
}
