//! The constants of the contract as its readers see them: the close-code table of
//! docs/PROTOCOL.md and the codes the web client (`web/socket.js`, plain JavaScript that
//! cannot import them) acts on.

use std::collections::BTreeMap;
use std::path::Path;

use palaver_proto::close;

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_close_code_table_names_every_constant() {
    let doc = read("../../docs/PROTOCOL.md");
    let section = doc
        .split("### 6.10 Close codes")
        .nth(1)
        .expect("a close-code section")
        .split("\n#")
        .next()
        .unwrap_or_default();
    // Rows read "| `4001` | `SESSION_ENDED` | …".
    let rows: BTreeMap<String, u16> = section
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line
                .split('|')
                .map(|c| c.trim().trim_matches('`'))
                .collect();
            let code = cells.get(1)?.parse::<u16>().ok()?;
            Some(((*cells.get(2)?).to_owned(), code))
        })
        .collect();
    let constants: BTreeMap<String, u16> = close::ALL
        .iter()
        .map(|(name, code)| ((*name).to_owned(), *code))
        .collect();
    assert_eq!(
        rows, constants,
        "docs/PROTOCOL.md 6.10 against palaver_proto::close"
    );
}

#[test]
fn the_web_client_acts_on_the_protocols_codes() {
    let js = read("../server/web/socket.js");
    // The codes the client treats specially, with the constant each must equal.
    for (code, meant) in [
        (close::SESSION_ENDED, "ev.code === 4001"),
        (close::AUTH_FAILED, "ev.code === 4003"),
    ] {
        assert!(js.contains(meant), "socket.js no longer has {meant:?}");
        assert!(meant.ends_with(&code.to_string()), "{meant} is not {code}");
    }
    // Every code it compares with is one the server sends.
    let known: Vec<u16> = close::ALL.iter().map(|(_, c)| *c).collect();
    for part in js.split("ev.code === ").skip(1) {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        let code: u16 = digits.parse().expect("a numeric close code");
        assert!(
            known.contains(&code),
            "socket.js acts on {code}, which the server never sends"
        );
    }
}
