//! A bounded Server-Sent Events parser: bytes in, events out.
//!
//! It buffers at most one line ([`SseParser::new`]'s `max_bytes`) and one
//! event's `data` (the same cap). A longer line or event is reported once as
//! [`SseError::TooLong`] and the rest of it is skipped, so a hostile or broken
//! upstream cannot make it grow without bound. Lines end in `\n` or `\r\n`;
//! a UTF-8 character split across two chunks is reassembled because lines
//! are decoded only when complete. Comment lines (`: ping`) are reported as
//! [`SseItem::Comment`] so a translator can pass keep-alives on.

use std::fmt;

/// The default cap on one SSE line or one event's data: 1 MiB.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1024 * 1024;

/// One complete SSE event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; `None` when absent (the spec's "message").
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// What the parser found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SseItem {
    /// A complete event.
    Event(SseEvent),
    /// A comment line (`:` and what follows, without the colon).
    Comment(String),
}

/// A line or event the parser refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SseError {
    /// A line or an event's data exceeded the cap (bytes).
    TooLong {
        /// The cap that was exceeded.
        limit: usize,
    },
    /// A complete line was not UTF-8.
    InvalidUtf8,
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SseError::TooLong { limit } => {
                write!(f, "an SSE line or event exceeded the {limit}-byte limit")
            }
            SseError::InvalidUtf8 => f.write_str("an SSE line was not valid UTF-8"),
        }
    }
}

impl std::error::Error for SseError {}

/// Incremental SSE parser with bounded buffers.
#[derive(Debug)]
pub struct SseParser {
    max: usize,
    line: Vec<u8>,
    /// Skipping the rest of an over-long line.
    skipping_line: bool,
    /// The current event overflowed: drop it at its blank line.
    skipping_event: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl SseParser {
    /// A parser whose line and event buffers hold at most `max_bytes`
    /// (see [`DEFAULT_MAX_EVENT_BYTES`]).
    pub fn new(max_bytes: usize) -> SseParser {
        SseParser {
            max: max_bytes.max(16),
            line: Vec::new(),
            skipping_line: false,
            skipping_event: false,
            event: None,
            data: String::new(),
            has_data: false,
        }
    }

    /// Bytes currently buffered (line + event data); never above twice the cap.
    pub fn buffered(&self) -> usize {
        self.line.len() + self.data.len()
    }

    /// Feeds a chunk; complete items and errors are appended to `out` in order.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<Result<SseItem, SseError>>) {
        let mut rest = chunk;
        while !rest.is_empty() {
            match rest.iter().position(|&b| b == b'\n') {
                Some(nl) => {
                    let (head, tail) = rest.split_at(nl);
                    self.append(head, out);
                    rest = &tail[1..];
                    if std::mem::take(&mut self.skipping_line) {
                        self.line.clear();
                        continue;
                    }
                    let mut line = std::mem::take(&mut self.line);
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    self.line_done(&line, out);
                    line.clear();
                    self.line = line; // keep the allocation
                }
                None => {
                    self.append(rest, out);
                    rest = &[];
                }
            }
        }
    }

    /// The upstream ended: a final event not followed by a blank line is
    /// still delivered (as browsers do not, but LLM providers sometimes omit
    /// the last blank line). A partial last line is treated as complete.
    pub fn finish(&mut self, out: &mut Vec<Result<SseItem, SseError>>) {
        if !self.line.is_empty() && !self.skipping_line {
            let line = std::mem::take(&mut self.line);
            let line = line.strip_suffix(b"\r").unwrap_or(&line).to_vec();
            self.line_done(&line, out);
        }
        self.line.clear();
        self.skipping_line = false;
        self.dispatch(out);
    }

    fn append(&mut self, bytes: &[u8], out: &mut Vec<Result<SseItem, SseError>>) {
        if self.skipping_line || bytes.is_empty() {
            return;
        }
        if self.line.len() + bytes.len() > self.max {
            self.line.clear();
            self.skipping_line = true;
            self.overflow(out);
            return;
        }
        self.line.extend_from_slice(bytes);
    }

    fn overflow(&mut self, out: &mut Vec<Result<SseItem, SseError>>) {
        if !self.skipping_event {
            out.push(Err(SseError::TooLong { limit: self.max }));
        }
        self.skipping_event = true;
        self.data = String::new();
        self.has_data = false;
        self.event = None;
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<Result<SseItem, SseError>>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if self.skipping_event {
            return;
        }
        let Ok(line) = std::str::from_utf8(line) else {
            out.push(Err(SseError::InvalidUtf8));
            return;
        };
        let (field, value) = match line.split_once(':') {
            Some(("", comment)) => {
                out.push(Ok(SseItem::Comment(comment.trim_start().to_owned())));
                return;
            }
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                let extra = value.len() + usize::from(self.has_data);
                if self.data.len() + extra > self.max {
                    self.overflow(out);
                    return;
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {} // id, retry and unknown fields are not needed here
        }
    }

    fn dispatch(&mut self, out: &mut Vec<Result<SseItem, SseError>>) {
        let skipped = std::mem::take(&mut self.skipping_event);
        let event = self.event.take();
        let data = std::mem::take(&mut self.data);
        let had = std::mem::take(&mut self.has_data);
        if !skipped && had {
            out.push(Ok(SseItem::Event(SseEvent { event, data })));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(p: &mut SseParser, chunks: &[&[u8]]) -> Vec<Result<SseItem, SseError>> {
        let mut out = Vec::new();
        for c in chunks {
            p.push(c, &mut out);
        }
        p.finish(&mut out);
        out
    }

    fn ev(event: Option<&str>, data: &str) -> Result<SseItem, SseError> {
        Ok(SseItem::Event(SseEvent {
            event: event.map(str::to_owned),
            data: data.to_owned(),
        }))
    }

    #[test]
    fn events_comments_and_crlf() {
        let mut p = SseParser::new(1024);
        let out = run(
            &mut p,
            &[b"event: a\r\ndata: 1\r\ndata:2\r\n\r\n: ping\n\ndata: x\n\n"],
        );
        assert_eq!(
            out,
            [
                ev(Some("a"), "1\n2"),
                Ok(SseItem::Comment("ping".into())),
                ev(None, "x")
            ]
        );
    }

    #[test]
    fn every_split_point_gives_the_same_events() {
        let text = "event: e\ndata: {\"t\":\"héllo 🌍\"}\n\ndata: [DONE]\n\n".as_bytes();
        let mut whole = SseParser::new(1024);
        let expected = run(&mut whole, &[text]);
        assert_eq!(expected.len(), 2);
        for i in 0..text.len() {
            for j in i..text.len() {
                let mut p = SseParser::new(1024);
                let got = run(&mut p, &[&text[..i], &text[i..j], &text[j..]]);
                assert_eq!(got, expected, "split at {i},{j}");
            }
        }
    }

    #[test]
    fn an_overlong_line_is_one_error_and_is_skipped() {
        let mut p = SseParser::new(32);
        let long = vec![b'x'; 100];
        let mut out = Vec::new();
        p.push(b"data: ", &mut out);
        for _ in 0..50 {
            p.push(&long, &mut out);
            assert!(p.buffered() <= 64, "{}", p.buffered());
        }
        p.push(b"\n\ndata: ok\n\n", &mut out);
        assert_eq!(out, [Err(SseError::TooLong { limit: 32 }), ev(None, "ok")]);
    }

    #[test]
    fn an_oversized_event_of_short_lines_is_dropped() {
        let mut p = SseParser::new(32);
        let mut out = Vec::new();
        for _ in 0..20 {
            p.push(b"data: 0123456789\n", &mut out);
            assert!(p.buffered() <= 64);
        }
        p.push(b"\ndata: next\n\n", &mut out);
        assert_eq!(
            out,
            [Err(SseError::TooLong { limit: 32 }), ev(None, "next")]
        );
    }

    #[test]
    fn a_last_event_without_blank_line_is_delivered_and_bad_utf8_reported() {
        let mut p = SseParser::new(64);
        assert_eq!(run(&mut p, &[b"data: end"]), [ev(None, "end")]);
        let mut p = SseParser::new(64);
        assert_eq!(
            run(&mut p, &[b"data: \xff\xfe\n\n"]),
            [Err(SseError::InvalidUtf8)]
        );
    }
}
