//! The data-driven part: every `corpus/*.hex` file is one attack with its expected answer,
//! so a new hostile input is a new file. Format, line by line: `#` comments; `conn fresh`,
//! `conn v4` or `conn v5` (how the socket starts, as `Conn`); `expect silent`,
//! `expect disconnect XX`, `expect connack4 XX` or `expect connack5 XX` (hex codes, as
//! `Expect`); then the bytes to send, in hex, spread over any number of lines.

use std::path::Path;

use super::{attack, broker, case, still_serving, Bystander, Case, Conn, Expect};

fn hex_byte(s: &str, file: &str) -> u8 {
    match u8::from_str_radix(s, 16) {
        Ok(b) => b,
        Err(e) => panic!("{file}: bad hex byte {s:?}: {e}"),
    }
}

fn parse(file: &str, text: &str) -> Case {
    let mut conn = None;
    let mut expect = None;
    let mut bytes = Vec::new();
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [] => {}
            [w, ..] if w.starts_with('#') => {}
            ["conn", "fresh"] => conn = Some(Conn::Fresh),
            ["conn", "v4"] => conn = Some(Conn::V4),
            ["conn", "v5"] => conn = Some(Conn::V5),
            ["expect", "silent"] => expect = Some(Expect::Silent),
            ["expect", "disconnect", c] => expect = Some(Expect::Disconnect(hex_byte(c, file))),
            ["expect", "connack4", c] => expect = Some(Expect::ConnAck4(hex_byte(c, file))),
            ["expect", "connack5", c] => expect = Some(Expect::ConnAck5(hex_byte(c, file))),
            hex => bytes.extend(hex.iter().map(|b| hex_byte(b, file))),
        }
    }
    let (Some(conn), Some(expect)) = (conn, expect) else {
        panic!("{file}: needs a `conn` and an `expect` line");
    };
    assert!(!bytes.is_empty(), "{file}: no bytes to send");
    case(file, conn, bytes, expect)
}

fn load() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile/corpus");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "hex"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let name = p
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{name}: {e}"));
            parse(&name, &text)
        })
        .collect()
}

#[tokio::test]
async fn hex_corpus() {
    let cases = load();
    assert!(cases.len() >= 20, "the corpus lost files: {}", cases.len());
    let broker = broker();
    let mut by = Bystander::join(broker.port).await;
    attack(broker.port, &mut by, cases).await;
    still_serving(&broker, &mut by).await;
}
