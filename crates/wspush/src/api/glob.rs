//! Channel patterns of `channels`: `*` any run of characters, `?` one character,
//! `[abc]` / `[a-z]` / `[!a]` one of (or none of) a set, `\` escapes; everything else
//! itself. The common part of Centrifugo's (gobwas) glob syntax, without separators.

/// Whether `name` matches `pattern` as a whole.
pub fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Backtracking over the last `*` only: linear-ish, no recursion.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match one(&p, pi, n[ni]) {
            Some(Step::Star) => {
                star = Some((pi + 1, ni));
                pi += 1;
            }
            Some(Step::Matched(next)) => {
                pi = next;
                ni += 1;
            }
            None => match star {
                Some((after, from)) => {
                    pi = after;
                    ni = from + 1;
                    star = Some((after, from + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

enum Step {
    Star,
    /// Matched one character; the pattern goes on at this index.
    Matched(usize),
}

fn one(p: &[char], i: usize, c: char) -> Option<Step> {
    match p.get(i)? {
        '*' => Some(Step::Star),
        '?' => Some(Step::Matched(i + 1)),
        '\\' => (p.get(i + 1) == Some(&c)).then_some(Step::Matched(i + 2)),
        '[' => set(p, i + 1, c),
        other => (*other == c).then_some(Step::Matched(i + 1)),
    }
}

/// `[...]` starting after its `[`; an unclosed `[` is a literal.
fn set(p: &[char], mut i: usize, c: char) -> Option<Step> {
    let start = i;
    let negate = p.get(i) == Some(&'!');
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    while let Some(&x) = p.get(i) {
        if x == ']' && !first {
            return (hit != negate).then_some(Step::Matched(i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|e| *e != ']') {
            hit |= (x..=p[i + 2]).contains(&c);
            i += 3;
        } else {
            hit |= x == c;
            i += 1;
        }
    }
    // No closing bracket: `[` stands for itself.
    (c == '[').then_some(Step::Matched(start))
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs() {
        assert!(matches("*", ""));
        assert!(matches("*", "news"));
        assert!(matches("news", "news"));
        assert!(!matches("news", "newsx"));
        assert!(matches("chat:*", "chat:room1"));
        assert!(!matches("chat:*", "news"));
        assert!(matches("*:room?", "chat:room1"));
        assert!(!matches("*:room?", "chat:room12"));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b*c", "aXXbYY"));
        assert!(matches("room[0-9]", "room7"));
        assert!(!matches("room[!0-9]", "room7"));
        assert!(matches("room[ab]", "roomb"));
        assert!(matches("a\\*", "a*"));
        assert!(!matches("a\\*", "ab"));
        assert!(matches("x[", "x["));
        assert!(matches("ü*", "über"));
    }
}
