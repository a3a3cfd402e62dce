//! The messages the search scenario stores: mostly English sentences, some Chinese,
//! Japanese and Korean ones, from a seeded generator (the same run, the same text), and
//! how many of them each measured query should find.

/// The mix, in percent of messages: English, Chinese, Japanese; Korean takes the rest.
const ENGLISH: u64 = 85;
const CHINESE: u64 = 6;
const JAPANESE: u64 = 5;

/// English words, most frequent first (a sentence draws low indices more often).
const EN: &[&str] = &[
    "the",
    "to",
    "and",
    "a",
    "i",
    "you",
    "it",
    "is",
    "we",
    "that",
    "for",
    "in",
    "of",
    "on",
    "this",
    "be",
    "have",
    "at",
    "can",
    "with",
    "will",
    "just",
    "what",
    "so",
    "are",
    "not",
    "do",
    "but",
    "me",
    "my",
    "ok",
    "get",
    "today",
    "now",
    "time",
    "know",
    "think",
    "good",
    "tomorrow",
    "see",
    "go",
    "meeting",
    "call",
    "send",
    "back",
    "need",
    "thanks",
    "yes",
    "later",
    "work",
    "team",
    "please",
    "update",
    "lunch",
    "week",
    "morning",
    "check",
    "project",
    "review",
    "file",
    "link",
    "deploy",
    "release",
    "notes",
    "budget",
    "client",
    "design",
    "draft",
    "issue",
    "fixed",
    "server",
    "build",
    "test",
    "schedule",
    "office",
    "coffee",
    "weekend",
    "ticket",
    "report",
    "slides",
    "invoice",
    "contract",
    "launch",
    "customer",
    "feedback",
    "deadline",
    "agenda",
    "sprint",
    "branch",
    "merge",
    "database",
    "backup",
    "outage",
    "pager",
    "rollback",
    "migration",
    "kubernetes",
    "quarterly",
    "roadmap",
    "onboarding",
    "hackathon",
    "offsite",
    "retrospective",
    "latency",
];

/// Chinese phrases, written without spaces.
const ZH: &[&str] = &[
    "我们",
    "明天",
    "会议",
    "会议室",
    "下午",
    "三点",
    "在",
    "项目",
    "讨论",
    "东京",
    "北京",
    "上海",
    "今天",
    "天气",
    "很好",
    "的",
    "了",
    "吗",
    "请",
    "确认",
    "时间",
    "地点",
    "报告",
    "已经",
    "发送",
    "邮件",
    "客户",
    "需要",
    "更新",
    "文件",
];

/// Japanese phrases, written without spaces.
const JA: &[&str] = &[
    "明日",
    "の",
    "会議",
    "は",
    "東京",
    "都庁",
    "で",
    "行います",
    "新しい",
    "プロジェクト",
    "について",
    "話しましょう",
    "資料",
    "を",
    "送ります",
    "よろしく",
    "お願いします",
    "今日",
    "大阪",
    "京都",
    "に",
    "行きます",
    "ありがとう",
    "ございます",
    "確認",
    "します",
];

/// Korean words, spaced.
const KO: &[&str] = &[
    "내일",
    "회의는",
    "서울에서",
    "합니다",
    "프로젝트",
    "자료를",
    "보내드릴게요",
    "한국어",
    "공부",
    "감사합니다",
    "오늘",
    "날씨가",
    "좋네요",
    "회의실",
    "확인",
    "부탁드립니다",
];

/// A seeded generator (xorshift64*): no dependency, the same text for the same seed.
pub struct Corpus {
    state: u64,
}

impl Corpus {
    pub fn new(seed: u64) -> Corpus {
        Corpus {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        }
    }

    fn next(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// An index into a list of `n`, low ones more often (the square of a uniform draw).
    fn skewed(&mut self, n: usize) -> usize {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((u * u * n as f64) as usize).min(n - 1)
    }

    /// The next message's text.
    pub fn message(&mut self) -> String {
        let kind = self.below(100);
        if kind < ENGLISH {
            let n = 5 + self.below(12) as usize;
            let mut words: Vec<&str> = (0..n).map(|_| EN[self.skewed(EN.len())]).collect();
            if let Some(first) = words.first_mut()
                && *first == "i"
            {
                *first = "I";
            }
            format!("{}.", words.join(" "))
        } else if kind < ENGLISH + CHINESE {
            let n = 4 + self.below(10) as usize;
            let s: String = (0..n)
                .map(|_| ZH[self.below(ZH.len() as u64) as usize])
                .collect();
            format!("{s}。")
        } else if kind < ENGLISH + CHINESE + JAPANESE {
            let n = 4 + self.below(10) as usize;
            let s: String = (0..n)
                .map(|_| JA[self.below(JA.len() as u64) as usize])
                .collect();
            format!("{s}。")
        } else {
            let n = 3 + self.below(6) as usize;
            let words: Vec<&str> = (0..n)
                .map(|_| KO[self.below(KO.len() as u64) as usize])
                .collect();
            format!("{}.", words.join(" "))
        }
    }
}

/// Whether `text` (as [`Corpus::message`] writes it) holds `query`: every space-separated
/// word of it as a whole word (case ignored), and a query without spaces in a script
/// written without spaces as a substring. What the server should find, counted here.
pub fn holds(text: &str, query: &str) -> bool {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    query.split_whitespace().all(|q| {
        if q.is_ascii() {
            words.iter().any(|w| w == &q.to_lowercase())
        } else {
            text.contains(q)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_is_mostly_english_and_the_same_for_a_seed() {
        let mut a = Corpus::new(7);
        let mut b = Corpus::new(7);
        let texts: Vec<String> = (0..2000).map(|_| a.message()).collect();
        assert_eq!(
            texts[..10],
            (0..10).map(|_| b.message()).collect::<Vec<_>>()[..]
        );
        let ascii = texts.iter().filter(|t| t.is_ascii()).count();
        assert!((1500..1900).contains(&ascii), "{ascii} English of 2000");
        assert!(texts.iter().any(|t| t.contains("会议")));
        assert!(texts.iter().any(|t| t.contains("東京")));
        assert!(texts.iter().any(|t| t.contains("회의")));
    }

    #[test]
    fn holds_counts_whole_words_and_cjk_substrings() {
        assert!(holds("the project meeting.", "project"));
        assert!(holds("The project meeting.", "meeting the"));
        assert!(!holds("projects.", "project"));
        assert!(holds("明天会议室在三点。", "会议室"));
        assert!(holds("明天会议室在三点。", "会"));
        assert!(!holds("東京と京都", "東京都"));
    }
}
