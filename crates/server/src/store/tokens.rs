//! Search tokens: the one rule for how text becomes what the search index holds. Both
//! engines' indexes are filled from [`index_tokens`] (on append and on edit), and queries
//! are cut by [`query`], so the two always agree.
//!
//! Text is normalised first ([`normalize`]: NFKC, then lowercase), so full-width and
//! half-width forms, ligatures and case all meet. It is then cut into runs:
//!
//! - **Words**: letters, digits and combining marks of scripts written with spaces between
//!   words (Latin, Cyrillic, Greek, Arabic, Hebrew, Devanagari…). A word is one token (its
//!   first [`MAX_WORD_CHARS`] characters). `owner's` is two words, `owner` and `s`.
//! - **Dense runs**: characters of scripts written without spaces, where a word cannot be
//!   told from its neighbours without a dictionary: Han, Hiragana, Katakana, Bopomofo,
//!   Thai, Lao, Khmer, Myanmar, and Hangul (spaced, but a Korean word carries its
//!   particles, so a name is found inside one). Every character of a run is a token, and
//!   so is every pair of neighbours (unigrams and overlapping bigrams): `東京都` indexes
//!   `東`, `京`, `都`, `東京`, `京都`.
//! - Anything else (spaces, punctuation, symbols, emoji) only separates.
//!
//! A query is cut the same way. A word must be present as a token; a dense run of one
//! character is its unigram, of two its bigram, and of three or more the bigrams that
//! cover it (`東京都庁` → `東京`, `都庁`), which find the candidates, plus the run itself
//! as a phrase that the caller checks against the candidate's normalised text, so that
//! `東京都` does not match `東京 … 京都` apart.
//!
//! Tokens never contain ASCII punctuation or spaces, which is what SQLite's FTS5 `ascii`
//! tokenizer splits on: it stores them as given.

use std::collections::HashSet;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// A word token keeps this many characters: the index stays bounded whatever a message
/// holds (PostgreSQL refuses index entries over about 2.7 kB), and a query word is cut
/// the same way.
pub const MAX_WORD_CHARS: usize = 32;

/// Text as the index and the phrase check see it: NFKC, then lowercase.
pub fn normalize(text: &str) -> String {
    text.nfkc().flat_map(char::to_lowercase).collect()
}

/// The tokens that index `text`, each once, in order of first appearance.
pub fn index_tokens(text: &str) -> Vec<String> {
    let mut out = Tokens::default();
    for run in runs(&normalize(text)) {
        match run {
            Run::Word(word) => out.push(word_token(word)),
            Run::Dense(chars) => {
                for (i, c) in chars.iter().enumerate() {
                    out.push(c.to_string());
                    if let Some(next) = chars.get(i + 1) {
                        out.push([*c, *next].iter().collect());
                    }
                }
            }
        }
    }
    out.list
}

/// A query, cut by the rule of the index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Tokens a match must hold, each once.
    pub tokens: Vec<String>,
    /// Dense runs of three characters or more: a candidate's normalised text must contain
    /// each as it is ([`Query::matches`]).
    pub phrases: Vec<String>,
}

impl Query {
    /// Whether a candidate found by the tokens holds every phrase.
    pub fn matches(&self, content: &str) -> bool {
        if self.phrases.is_empty() {
            return true;
        }
        let text = normalize(content);
        self.phrases.iter().all(|p| text.contains(p.as_str()))
    }
}

/// Cuts a query into the tokens that find candidates and the phrases that confirm them.
pub fn query(text: &str) -> Query {
    let mut tokens = Tokens::default();
    let mut phrases = Vec::new();
    for run in runs(&normalize(text)) {
        match run {
            Run::Word(word) => tokens.push(word_token(word)),
            Run::Dense(chars) if chars.len() == 1 => tokens.push(chars[0].to_string()),
            Run::Dense(chars) => {
                // Pairs from the start, and the last pair when the length is odd: enough
                // to cover every character; the phrase check does the rest.
                let mut i = 0;
                while i + 1 < chars.len() {
                    tokens.push(chars[i..i + 2].iter().collect());
                    i += 2;
                }
                if chars.len() % 2 == 1 {
                    tokens.push(chars[chars.len() - 2..].iter().collect());
                }
                if chars.len() >= 3 {
                    let phrase: String = chars.iter().collect();
                    if !phrases.contains(&phrase) {
                        phrases.push(phrase);
                    }
                }
            }
        }
    }
    Query {
        tokens: tokens.list,
        phrases,
    }
}

/// Tokens without repeats, in order.
#[derive(Default)]
struct Tokens {
    seen: HashSet<String>,
    list: Vec<String>,
}

impl Tokens {
    fn push(&mut self, token: String) {
        if self.seen.insert(token.clone()) {
            self.list.push(token);
        }
    }
}

fn word_token(word: &str) -> String {
    word.chars().take(MAX_WORD_CHARS).collect()
}

enum Run<'a> {
    Word(&'a str),
    Dense(Vec<char>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Word,
    Dense,
    Gap,
}

fn class(c: char) -> Class {
    if is_dense(c) {
        Class::Dense
    } else if c.is_alphanumeric() || is_combining_mark(c) {
        Class::Word
    } else {
        Class::Gap
    }
}

/// The runs of normalised text, in order.
fn runs(text: &str) -> Vec<Run<'_>> {
    let mut out = Vec::new();
    // Where the open run started, and its class.
    let mut open: Option<(usize, Class)> = None;
    // A gap at the end closes the last run.
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        let k = class(c);
        if let Some((from, kind)) = open {
            if kind == k {
                continue;
            }
            let piece = &text[from..i];
            out.push(match kind {
                Class::Word => Run::Word(piece),
                _ => Run::Dense(piece.chars().collect()),
            });
        }
        open = (k != Class::Gap).then_some((i, k));
    }
    out
}

/// Scripts written without spaces between words (and Hangul): see the module's doc.
fn is_dense(c: char) -> bool {
    matches!(u32::from(c),
        0x0E00..=0x0EFF          // Thai, Lao
        | 0x1000..=0x109F        // Myanmar
        | 0x1100..=0x11FF        // Hangul Jamo
        | 0x1780..=0x17FF        // Khmer
        | 0x2E80..=0x2FDF        // CJK radicals, Kangxi radicals
        | 0x3005..=0x3007        // 々 〆 〇
        | 0x3021..=0x3029        // Hangzhou numerals
        | 0x3031..=0x3035        // kana repeat marks
        | 0x303B..=0x303C
        | 0x3041..=0x309F        // Hiragana
        | 0x30A0..=0x30FA        // Katakana (not the middle dot ・)
        | 0x30FC..=0x30FF        // ー and the iteration marks
        | 0x3105..=0x312F        // Bopomofo
        | 0x3131..=0x318E        // Hangul compatibility Jamo
        | 0x31A0..=0x31BF        // Bopomofo extended
        | 0x31F0..=0x31FF        // Katakana phonetic extensions
        | 0x3400..=0x4DBF        // CJK extension A
        | 0x4E00..=0x9FFF        // CJK unified ideographs
        | 0xA960..=0xA97F        // Hangul Jamo extended A
        | 0xAC00..=0xD7FF        // Hangul syllables, Jamo extended B
        | 0xF900..=0xFAFF        // CJK compatibility ideographs
        | 0xFF66..=0xFF9F        // half-width Katakana (NFKC widens them anyway)
        | 0xFFA0..=0xFFDC        // half-width Hangul
        | 0x1B000..=0x1B16F      // Kana supplement and extensions
        | 0x20000..=0x3FFFF      // CJK extensions B and beyond
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(tokens: &[&str]) -> Vec<String> {
        tokens.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn words_are_lowercased_and_split_on_everything_else() {
        assert_eq!(
            index_tokens("Hello, WORLD! The owner's café—naïve"),
            set(&["hello", "world", "the", "owner", "s", "café", "naïve"])
        );
        // Repeats once; full-width forms meet their ASCII forms (NFKC).
        assert_eq!(index_tokens("ｈｅｌｌｏ hello HELLO"), set(&["hello"]));
        assert_eq!(index_tokens("Привет мир"), set(&["привет", "мир"]));
    }

    #[test]
    fn dense_runs_give_unigrams_and_bigrams() {
        assert_eq!(
            index_tokens("東京都"),
            set(&["東", "東京", "京", "京都", "都"])
        );
        // Latin and digits inside a CJK sentence are words of their own.
        assert_eq!(
            index_tokens("会议在3点OK吗"),
            set(&["会", "会议", "议", "议在", "在", "3", "点", "ok", "吗"])
        );
    }

    #[test]
    fn queries_cover_dense_runs_and_keep_long_ones_as_phrases() {
        assert_eq!(query("東").tokens, set(&["東"]));
        assert_eq!(query("東京").tokens, set(&["東京"]));
        let q = query("東京都");
        assert_eq!(q.tokens, set(&["東京", "京都"]));
        assert_eq!(q.phrases, set(&["東京都"]));
        assert_eq!(query("東京都庁").tokens, set(&["東京", "都庁"]));
        assert_eq!(query("한국").tokens, set(&["한국"]));
        assert_eq!(
            query("  Meeting   TOMORROW ").tokens,
            set(&["meeting", "tomorrow"])
        );
        assert!(query(" !?… ").tokens.is_empty());
    }

    #[test]
    fn every_query_token_of_a_substring_is_in_the_index() {
        let text = "明日の会議は東京都庁で。한국어를 배워요. Meeting at 10";
        let indexed: HashSet<String> = index_tokens(text).into_iter().collect();
        for q in [
            "東",
            "会議",
            "東京都",
            "東京都庁",
            "京都庁",
            "한국",
            "한국어",
            "meeting",
            "10",
        ] {
            let query = query(q);
            assert!(!query.tokens.is_empty(), "{q}");
            for t in &query.tokens {
                assert!(indexed.contains(t), "{q}: {t} not indexed");
            }
            assert!(query.matches(text), "{q}");
        }
    }

    #[test]
    fn phrases_refuse_pieces_found_apart() {
        let q = query("東京都");
        assert!(q.matches("東京都に住む"));
        assert!(!q.matches("東京と京都に行った"));
        // Both bigrams are indexed there, so only the phrase tells them apart.
        let indexed: HashSet<String> = index_tokens("東京と京都").into_iter().collect();
        assert!(q.tokens.iter().all(|t| indexed.contains(t)));
    }

    #[test]
    fn long_words_are_cut_the_same_way_on_both_sides() {
        let long = "a".repeat(100);
        assert_eq!(index_tokens(&long), set(&[&"a".repeat(MAX_WORD_CHARS)]));
        assert_eq!(query(&long).tokens, index_tokens(&long));
    }
}
