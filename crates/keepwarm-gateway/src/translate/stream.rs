//! What both stream translators share: feeding upstream bytes through the
//! bounded SSE parser to a state machine, one item at a time until it is
//! done, and ending the stream — properly when the machine saw its finish,
//! with an error event when the upstream was cut off or failed.
//!
//! A translator implements [`StreamMachine`]'s five required methods; the
//! provided [`push`](StreamMachine::push), [`finish`](StreamMachine::finish)
//! and [`fail`](StreamMachine::fail) are the whole driving loop.

use super::sse::{SseError, SseItem, SseParser};

/// The parser and its reusable item buffer, owned by a translator.
#[derive(Debug)]
pub struct Feed {
    parser: SseParser,
    items: Vec<Result<SseItem, SseError>>,
}

impl Feed {
    /// A feed whose events may hold up to `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Feed {
        Feed {
            parser: SseParser::new(max_event_bytes),
            items: Vec::new(),
        }
    }

    /// Bytes held in the parser's buffers.
    pub fn buffered(&self) -> usize {
        self.parser.buffered()
    }
}

/// A stream translation state machine driven by parsed SSE items.
pub trait StreamMachine {
    /// Its feed.
    fn feed(&mut self) -> &mut Feed;
    /// The output written so far and not yet taken.
    fn out(&mut self) -> &mut Vec<u8>;
    /// The terminal output was written; later input is ignored.
    fn is_done(&self) -> bool;
    /// Handles one parsed item (called only while not done).
    fn item(&mut self, item: Result<SseItem, SseError>);
    /// The upstream ended while not done: write the terminal output, or an
    /// error event when the stream was cut off before its finish.
    fn end(&mut self);
    /// Writes an error event of `kind` and the terminal output.
    fn error(&mut self, kind: &str, message: &str);

    /// Feeds upstream bytes; returns the output to send.
    fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        drive(self, |p, items| p.push(bytes, items));
        std::mem::take(self.out())
    }

    /// The upstream ended; returns the final output.
    fn finish(&mut self) -> Vec<u8> {
        drive(self, |p, items| p.finish(items));
        if !self.is_done() {
            self.end();
        }
        std::mem::take(self.out())
    }

    /// The upstream failed mid-stream (`cause`); returns the final output.
    fn fail(&mut self, cause: &str) -> Vec<u8> {
        if !self.is_done() {
            self.error("api_error", &format!("the stream failed: {cause}"));
        }
        std::mem::take(self.out())
    }
}

/// Parses with `parse` and hands each item to `m` until it is done.
fn drive<M: StreamMachine + ?Sized>(
    m: &mut M,
    parse: impl FnOnce(&mut SseParser, &mut Vec<Result<SseItem, SseError>>),
) {
    if m.is_done() {
        return;
    }
    let feed = m.feed();
    let mut items = std::mem::take(&mut feed.items);
    parse(&mut feed.parser, &mut items);
    for item in items.drain(..) {
        if !m.is_done() {
            m.item(item);
        }
    }
    m.feed().items = items;
}
