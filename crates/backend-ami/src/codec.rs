//! Sans-IO AMI framing: parse what Asterisk sends, encode what we send.
//!
//! Parsing has the httparse shape: [`parse_message`] looks at a byte slice and answers
//! [`Status::Complete`] with the number of bytes used, or [`Status::Partial`] when more bytes are
//! needed; incomplete input is never an error. Limits are explicit ([`DecodeLimits`]) and exceeding
//! one is a typed [`ParseError`]. [`Decoder`] adds the buffering a connection needs: the banner
//! line, a bounded buffer, and resynchronisation after a malformed message so one bad frame does not
//! end the connection.
//!
//! Encoding is the single gate for everything written to Asterisk: [`Action::encode`] refuses CR, LF
//! and NUL anywhere (header injection lets a caller smuggle a second action), whitelists header and
//! `Variable` names, escapes `Variable` values, and keeps within Asterisk's input limits
//! ([`ASTERISK_MAX_LINE_BYTES`], [`ASTERISK_MAX_HEADERS`]). It validates before writing a single byte.

use std::fmt;

/// Asterisk reads an action line into a 1025-byte buffer and drops longer lines, so a line we send
/// (CRLF included) must fit in 1024 bytes.
pub const ASTERISK_MAX_LINE_BYTES: usize = 1024;
/// Asterisk keeps at most 128 header lines of an action (`AST_MAX_MANHEADERS`); more are dropped
/// silently, which could drop the very header that matters.
pub const ASTERISK_MAX_HEADERS: usize = 128;

/// Marker ending the pre-Asterisk-14 `Response: Follows` command output block.
const END_COMMAND: &str = "--END COMMAND--";

/// Result of looking at possibly incomplete input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// A whole item was found; for parsers this carries the number of bytes it used.
    Complete(T),
    /// The input ends before the item does; call again with more bytes.
    Partial,
}

/// One `Name: value` line, with the name as Asterisk spelled it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name; compare with [`str::eq_ignore_ascii_case`], Asterisk is case-insensitive.
    pub name: String,
    /// Header value, leading blanks after the colon removed.
    pub value: String,
}

/// A received AMI message (response or event): headers in wire order, repeats kept.
///
/// Repeats matter: `Output`, `ChanVariable` and `Variable` legitimately occur many times.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    headers: Vec<Header>,
}

impl Message {
    /// An empty message, mostly for building test input.
    pub fn new() -> Message {
        Message::default()
    }

    /// Builds a message from `(name, value)` pairs, in order.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Message {
        let mut msg = Message::new();
        for (name, value) in pairs {
            msg.push(name, value);
        }
        msg
    }

    /// Appends a header, keeping any earlier header of the same name.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.headers.push(Header {
            name: name.into(),
            value: value.into(),
        });
    }

    /// All headers in wire order.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// The first value of `name`, compared case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Every value of `name` in wire order, compared case-insensitively.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// The `Event` name, if this is an event.
    pub fn event(&self) -> Option<&str> {
        self.get("Event")
    }

    /// The `Response` value (`Success`, `Error`, `Follows`, `Goodbye`), if this is a response.
    ///
    /// Events are never responses, even those with a `Response` header (`OriginateResponse` has one).
    pub fn response(&self) -> Option<&str> {
        if self.event().is_some() {
            return None;
        }
        self.get("Response")
    }

    /// The `ActionID` this message answers, if any.
    pub fn action_id(&self) -> Option<&str> {
        self.get("ActionID")
    }

    /// True when the event name equals `name`, ignoring case.
    pub fn is_event(&self, name: &str) -> bool {
        self.event().is_some_and(|e| e.eq_ignore_ascii_case(name))
    }

    /// True for the event that closes a list reply (`EventList: Complete`, e.g. `QueueStatusComplete`).
    pub fn is_list_complete(&self) -> bool {
        self.get("EventList")
            .is_some_and(|v| v.eq_ignore_ascii_case("Complete"))
    }

    /// Lines of command output, from either reply form (`Output:` lines, or the old
    /// `--END COMMAND--` block, which the parser also stores as `Output` headers).
    pub fn command_output(&self) -> Vec<&str> {
        self.get_all("Output").collect()
    }

    /// A channel variable reported on an event: `ChanVariable: NAME=value` (Asterisk 12+) or the older
    /// `ChanVariable(Channel): NAME=value`. Names compare case-sensitively, as in the dialplan.
    pub fn chan_variable(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|h| {
                h.name.len() >= 12 && h.name.as_bytes()[..12].eq_ignore_ascii_case(b"ChanVariable")
            })
            .find_map(|h| {
                let (n, v) = h.value.split_once('=')?;
                (n == name).then_some(v)
            })
    }
}

/// The first line Asterisk sends, e.g. `Asterisk Call Manager/11.0.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Banner {
    /// Text before the last `/` (`Asterisk Call Manager`).
    pub product: String,
    /// AMI protocol version after the last `/` (`11.0.0`).
    pub version: String,
}

/// What the decoder yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The greeting line, always first on a connection.
    Banner(Banner),
    /// A response or an event.
    Message(Message),
}

/// Bounds on what the parser accepts, so a broken or hostile peer cannot make us buffer without end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Longest line, terminator excluded.
    pub max_line_bytes: usize,
    /// Most lines in one message (headers plus command output lines).
    pub max_lines: usize,
    /// Most bytes in one message, terminators included.
    pub max_message_bytes: usize,
}

impl Default for DecodeLimits {
    /// Generous for what Asterisk sends (long `Output` lines, big command output), small enough to
    /// bound memory per connection.
    fn default() -> DecodeLimits {
        DecodeLimits {
            max_line_bytes: 8 * 1024,
            max_lines: 4096,
            max_message_bytes: 1024 * 1024,
        }
    }
}

/// Why a received message was refused. `line` is 1-based within the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A line exceeds [`DecodeLimits::max_line_bytes`].
    #[error("line {line} exceeds {limit} bytes")]
    LineTooLong { line: usize, limit: usize },
    /// The message has more lines than [`DecodeLimits::max_lines`].
    #[error("message exceeds {limit} lines")]
    TooManyLines { limit: usize },
    /// The message exceeds [`DecodeLimits::max_message_bytes`].
    #[error("message exceeds {limit} bytes")]
    MessageTooLarge { limit: usize },
    /// A line that is neither a header nor the blank end-of-message line.
    #[error("line {line} is not a `Name: value` header")]
    MissingColon { line: usize },
    /// A line starting with `:`.
    #[error("line {line} has an empty header name")]
    EmptyHeaderName { line: usize },
    /// The first line of the connection is not `<product>/<version>`.
    #[error("the connection did not start with an AMI banner")]
    BadBanner,
}

/// Parses one message at the start of `buf`.
///
/// Leading blank lines are skipped. Lines end in CRLF or a bare LF. On success the count includes the
/// blank line that ends the message. A `Response: Follows` message is read in the old command form:
/// after its `Privilege`/`ActionID` headers every line, blank ones included, is output up to
/// `--END COMMAND--`, and is stored as `Output` headers.
pub fn parse_message(
    buf: &[u8],
    limits: &DecodeLimits,
) -> Result<Status<(usize, Message)>, ParseError> {
    let mut pos = 0;
    let mut start: Option<usize> = None;
    let mut msg = Message::new();
    let mut line_no = 0;
    let mut follows = false;
    let mut in_output = false;
    loop {
        let Some(line) = next_line(buf, pos) else {
            if buf.len() - pos > limits.max_line_bytes {
                return Err(ParseError::LineTooLong {
                    line: line_no + 1,
                    limit: limits.max_line_bytes,
                });
            }
            if start.is_some_and(|s| buf.len() - s > limits.max_message_bytes) {
                return Err(ParseError::MessageTooLarge {
                    limit: limits.max_message_bytes,
                });
            }
            return Ok(Status::Partial);
        };
        let content = &buf[line.start..line.content_end];
        let first = match start {
            Some(s) => s,
            None if content.is_empty() => {
                // Blank lines between messages carry nothing.
                pos = line.next;
                continue;
            }
            None => {
                start = Some(line.start);
                line.start
            }
        };
        line_no += 1;
        if content.len() > limits.max_line_bytes {
            return Err(ParseError::LineTooLong {
                line: line_no,
                limit: limits.max_line_bytes,
            });
        }
        if line_no > limits.max_lines {
            return Err(ParseError::TooManyLines {
                limit: limits.max_lines,
            });
        }
        if line.next - first > limits.max_message_bytes {
            return Err(ParseError::MessageTooLarge {
                limit: limits.max_message_bytes,
            });
        }
        pos = line.next;
        let text = String::from_utf8_lossy(content);
        if follows && !in_output {
            // After `Response: Follows` only `Privilege` and `ActionID` are headers; the first other
            // line starts the raw output, which may itself contain colons or blank lines.
            let still_header = !content.is_empty()
                && split_header(&text).is_some_and(|(name, _)| is_follows_header(name));
            in_output = !still_header && !content.is_empty();
        }
        if in_output {
            if let Some(before) = text.strip_suffix(END_COMMAND) {
                if !before.is_empty() {
                    msg.push("Output", before);
                }
                // The block is closed by a blank line; wait for it so it is not read as an empty
                // message later. A peer that omits it gets its next message parsed normally.
                return match next_line(buf, pos) {
                    None => Ok(Status::Partial),
                    Some(l) if l.content_end == l.start => Ok(Status::Complete((l.next, msg))),
                    Some(_) => Ok(Status::Complete((pos, msg))),
                };
            }
            msg.push("Output", text.into_owned());
            continue;
        }
        if content.is_empty() {
            return Ok(Status::Complete((pos, msg)));
        }
        match split_header(&text) {
            None => return Err(ParseError::MissingColon { line: line_no }),
            Some(("", _)) => return Err(ParseError::EmptyHeaderName { line: line_no }),
            Some((name, value)) => {
                if name.eq_ignore_ascii_case("Response") && value.eq_ignore_ascii_case("Follows") {
                    follows = true;
                }
                msg.push(name, value);
            }
        }
    }
}

/// Position of one line inside a buffer.
struct Line {
    start: usize,
    /// End of the content (the CR of CRLF, or the LF itself, excluded).
    content_end: usize,
    /// First byte after the LF.
    next: usize,
}

fn next_line(buf: &[u8], pos: usize) -> Option<Line> {
    let rel = buf.get(pos..)?.iter().position(|&b| b == b'\n')?;
    let lf = pos + rel;
    let content_end = if lf > pos && buf[lf - 1] == b'\r' {
        lf - 1
    } else {
        lf
    };
    Some(Line {
        start: pos,
        content_end,
        next: lf + 1,
    })
}

fn split_header(text: &str) -> Option<(&str, &str)> {
    let (name, value) = text.split_once(':')?;
    Some((name, value.trim_start_matches([' ', '\t'])))
}

fn is_follows_header(name: &str) -> bool {
    ["Response", "Privilege", "ActionID"]
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name))
}

fn parse_banner(line: &str) -> Result<Banner, ParseError> {
    let (product, version) = line.rsplit_once('/').ok_or(ParseError::BadBanner)?;
    if product.is_empty() || version.is_empty() || product.contains(':') {
        return Err(ParseError::BadBanner);
    }
    Ok(Banner {
        product: product.to_owned(),
        version: version.to_owned(),
    })
}

/// Where the decoder is in the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DecoderState {
    AwaitBanner,
    Messages,
    /// Skipping the rest of a refused message; `line_len` counts non-CR bytes on the current line.
    Discarding {
        line_len: usize,
    },
}

/// Streaming decoder: feed it what the socket gave, then drain frames.
///
/// The buffer never holds more than one message's limit plus one read: a frame that would exceed it is
/// refused, discarded up to its end-of-message blank line, and decoding carries on with the next one.
#[derive(Debug, Clone)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already decoded; dropped lazily so a read holding many messages is not
    /// shifted once per message.
    start: usize,
    limits: DecodeLimits,
    state: DecoderState,
}

impl Decoder {
    /// A decoder for a fresh connection: the banner line comes first.
    pub fn new(limits: DecodeLimits) -> Decoder {
        Decoder {
            buf: Vec::new(),
            start: 0,
            limits,
            state: DecoderState::AwaitBanner,
        }
    }

    /// A decoder that expects messages only (e.g. for a recorded stream without its banner).
    pub fn without_banner(limits: DecodeLimits) -> Decoder {
        Decoder {
            state: DecoderState::Messages,
            ..Decoder::new(limits)
        }
    }

    /// Appends received bytes. Call [`Decoder::decode`] until it returns `Ok(None)` afterwards.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held waiting for the rest of a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    /// Drops bytes up to the blank line that ends the refused message. Returns true once that line
    /// was found (back to normal decoding), false when all buffered bytes were dropped.
    fn discard(&mut self) -> bool {
        let DecoderState::Discarding { line_len } = self.state else {
            return true;
        };
        let mut len = line_len;
        for (i, &b) in self.buf.iter().enumerate() {
            match b {
                b'\n' if len == 0 => {
                    self.buf.drain(..=i);
                    self.state = DecoderState::Messages;
                    return true;
                }
                b'\n' => len = 0,
                b'\r' => {}
                _ => len += 1,
            }
        }
        self.buf.clear();
        self.state = DecoderState::Discarding { line_len: len };
        false
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed.
    ///
    /// An error means one frame was refused and skipped; the decoder stays usable and the next call
    /// continues after it.
    pub fn decode(&mut self) -> Result<Option<Frame>, ParseError> {
        loop {
            if self.state != DecoderState::Messages {
                self.compact();
            }
            match self.state {
                DecoderState::AwaitBanner => {
                    let Some(line) = next_line(&self.buf, 0) else {
                        if self.buf.len() > self.limits.max_line_bytes {
                            self.state = DecoderState::Discarding { line_len: 0 };
                            self.discard();
                            return Err(ParseError::BadBanner);
                        }
                        return Ok(None);
                    };
                    let text = String::from_utf8_lossy(&self.buf[..line.content_end]).into_owned();
                    self.buf.drain(..line.next);
                    if text.is_empty() {
                        continue;
                    }
                    self.state = DecoderState::Messages;
                    return parse_banner(&text).map(|b| Some(Frame::Banner(b)));
                }
                DecoderState::Discarding { .. } => {
                    if !self.discard() {
                        return Ok(None);
                    }
                }
                DecoderState::Messages => {
                    return match parse_message(&self.buf[self.start..], &self.limits) {
                        Ok(Status::Complete((n, msg))) => {
                            self.start += n;
                            Ok(Some(Frame::Message(msg)))
                        }
                        Ok(Status::Partial) => {
                            self.compact();
                            // Blank lines alone need not be kept.
                            if self.buf.iter().all(|b| *b == b'\r' || *b == b'\n') {
                                let keep = usize::from(self.buf.last() == Some(&b'\r'));
                                let cut = self.buf.len() - keep;
                                self.buf.drain(..cut);
                            }
                            Ok(None)
                        }
                        Err(e) => {
                            self.compact();
                            let skip = self
                                .buf
                                .iter()
                                .take_while(|b| **b == b'\r' || **b == b'\n')
                                .count();
                            self.buf.drain(..skip);
                            self.state = DecoderState::Discarding { line_len: 0 };
                            self.discard();
                            Err(e)
                        }
                    };
                }
            }
        }
    }
}

/// Why an action was refused before anything was written.
///
/// Values are never quoted: they may hold secrets or the very bytes an attacker chose.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// CR, LF or NUL inside a header name or value: the classic AMI header injection.
    #[error(
        "header `{header}` contains a forbidden byte {byte:#04x} (CR, LF and NUL are refused)"
    )]
    ForbiddenByte { header: String, byte: u8 },
    /// A header name outside `[A-Za-z0-9_-]`.
    #[error("header name `{name}` is not made of letters, digits, `-` or `_`")]
    InvalidHeaderName { name: String },
    /// A `Variable` name outside `[A-Za-z_][A-Za-z0-9_]*`.
    #[error("variable name `{name}` is not a dialplan variable name")]
    InvalidVariableName { name: String },
    /// A line longer than Asterisk reads.
    #[error("header `{header}` makes a {len}-byte line; Asterisk reads at most {limit}")]
    LineTooLong {
        header: String,
        len: usize,
        limit: usize,
    },
    /// More headers than Asterisk keeps.
    #[error("action has {count} headers; Asterisk keeps at most {limit}")]
    TooManyHeaders { count: usize, limit: usize },
    /// The action name is empty or invalid.
    #[error("action name `{name}` is not valid")]
    InvalidActionName { name: String },
}

/// An action to send: name, ordered headers, and channel variables.
///
/// Built freely, checked only by [`Action::encode`], so there is one place where every byte sent to
/// Asterisk is validated. `Debug` redacts `Secret` and `Key`.
#[derive(Clone, PartialEq, Eq)]
pub struct Action {
    name: String,
    items: Vec<Item>,
}

/// One line of an action before encoding, in the order it was added.
#[derive(Clone, PartialEq, Eq)]
enum Item {
    Header(Header),
    /// A channel variable, validated and escaped on encoding.
    Variable(String, String),
}

/// Header names whose values must never reach a log.
const SECRET_HEADERS: [&str; 2] = ["Secret", "Key"];

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        map.entry(&"Action", &self.name);
        for item in &self.items {
            match item {
                Item::Header(h)
                    if SECRET_HEADERS
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(&h.name)) =>
                {
                    map.entry(&h.name, &"<redacted>");
                }
                Item::Header(h) => {
                    map.entry(&h.name, &h.value);
                }
                Item::Variable(n, v) => {
                    map.entry(&"Variable", &format_args!("{n}={v}"));
                }
            }
        }
        map.finish()
    }
}

impl Action {
    /// A new action, e.g. `Action::new("Ping")`.
    pub fn new(name: impl Into<String>) -> Action {
        Action {
            name: name.into(),
            items: Vec::new(),
        }
    }

    /// Adds a header (kept in order; repeats allowed).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Action {
        self.items.push(Item::Header(Header {
            name: name.into(),
            value: value.into(),
        }));
        self
    }

    /// Adds a channel variable; its value is escaped on encoding so `,` or `"` cannot start another
    /// variable.
    pub fn variable(mut self, name: impl Into<String>, value: impl Into<String>) -> Action {
        self.items.push(Item::Variable(name.into(), value.into()));
        self
    }

    /// The action name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The first value of a header, case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.items.iter().find_map(|item| match item {
            Item::Header(h) if h.name.eq_ignore_ascii_case(name) => Some(h.value.as_str()),
            _ => None,
        })
    }

    /// Channel variables in order, unescaped.
    pub fn variables(&self) -> impl Iterator<Item = (&str, &str)> {
        self.items.iter().filter_map(|item| match item {
            Item::Variable(n, v) => Some((n.as_str(), v.as_str())),
            Item::Header(_) => None,
        })
    }

    /// The `ActionID`, if set.
    pub fn action_id(&self) -> Option<&str> {
        self.get("ActionID")
    }

    /// Sets the `ActionID`, replacing any previous one; it is always written right after `Action`.
    pub fn set_action_id(&mut self, id: impl Into<String>) {
        self.items.retain(
            |item| !matches!(item, Item::Header(h) if h.name.eq_ignore_ascii_case("ActionID")),
        );
        self.items.insert(
            0,
            Item::Header(Header {
                name: "ActionID".into(),
                value: id.into(),
            }),
        );
    }

    /// Appends the wire form to `out`, or refuses without touching `out`.
    ///
    /// Returns the number of bytes appended.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
        let mut lines: Vec<(&str, std::borrow::Cow<'_, str>)> =
            Vec::with_capacity(1 + self.items.len());
        if self.name.is_empty() || !self.name.bytes().all(is_name_byte) {
            return Err(EncodeError::InvalidActionName {
                name: printable(&self.name),
            });
        }
        lines.push(("Action", self.name.as_str().into()));
        for item in &self.items {
            match item {
                Item::Header(h) => {
                    check_bytes(&h.name, &h.name)?;
                    if h.name.is_empty() || !h.name.bytes().all(is_name_byte) {
                        return Err(EncodeError::InvalidHeaderName {
                            name: printable(&h.name),
                        });
                    }
                    check_bytes(&h.name, &h.value)?;
                    lines.push((h.name.as_str(), h.value.as_str().into()));
                }
                Item::Variable(name, value) => {
                    check_bytes("Variable", name)?;
                    check_bytes("Variable", value)?;
                    if !is_variable_name(name) {
                        return Err(EncodeError::InvalidVariableName {
                            name: printable(name),
                        });
                    }
                    let line = format!("{name}={}", escape_variable_value(value));
                    lines.push(("Variable", line.into()));
                }
            }
        }
        if lines.len() > ASTERISK_MAX_HEADERS {
            return Err(EncodeError::TooManyHeaders {
                count: lines.len(),
                limit: ASTERISK_MAX_HEADERS,
            });
        }
        let mut total = 2;
        for (name, value) in &lines {
            let len = name.len() + 2 + value.len() + 2;
            if len > ASTERISK_MAX_LINE_BYTES {
                return Err(EncodeError::LineTooLong {
                    header: (*name).to_owned(),
                    len,
                    limit: ASTERISK_MAX_LINE_BYTES,
                });
            }
            total += len;
        }
        out.reserve(total);
        for (name, value) in &lines {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        Ok(total)
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Dialplan variable names: a letter or `_` first (a leading `_`/`__` asks for inheritance), then
/// letters, digits and `_`.
pub fn is_variable_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && name.bytes().any(|b| b.is_ascii_alphanumeric())
}

fn check_bytes(header: &str, text: &str) -> Result<(), EncodeError> {
    match text.bytes().find(|b| matches!(b, b'\r' | b'\n' | 0)) {
        Some(byte) => Err(EncodeError::ForbiddenByte {
            header: printable(header),
            byte,
        }),
        None => Ok(()),
    }
}

/// A header name made safe to show in an error (control bytes escaped).
fn printable(s: &str) -> String {
    s.escape_debug().to_string()
}

/// Escapes a `Variable` value for Asterisk's argument splitter.
///
/// Asterisk splits each `Variable:` header on `,` into several `name=value` pairs, honours `"`
/// quoting and `()`/`[]` nesting, and takes `\` as "next byte is literal". Prefixing those bytes with
/// `\` makes the value arrive verbatim and unable to define a second variable.
pub fn escape_variable_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '"' | '(' | ')' | '[' | ']' | '|') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(bytes: &[u8]) -> Vec<Result<Frame, ParseError>> {
        let mut d = Decoder::new(DecodeLimits::default());
        d.feed(bytes);
        let mut out = Vec::new();
        loop {
            match d.decode() {
                Ok(Some(f)) => out.push(Ok(f)),
                Ok(None) => break,
                Err(e) => out.push(Err(e)),
            }
        }
        out
    }

    #[test]
    fn banner_then_messages_with_crlf_or_lf() {
        let frames = parse_all(
            b"Asterisk Call Manager/11.0.0\r\nResponse: Success\r\nActionID: a\r\n\r\nEvent: X\nK: v\n\n",
        );
        assert_eq!(
            frames[0],
            Ok(Frame::Banner(Banner {
                product: "Asterisk Call Manager".into(),
                version: "11.0.0".into()
            }))
        );
        let Ok(Frame::Message(m)) = &frames[1] else {
            panic!("{frames:?}")
        };
        assert_eq!(m.action_id(), Some("a"));
        let Ok(Frame::Message(m)) = &frames[2] else {
            panic!("{frames:?}")
        };
        assert_eq!(m.get("k"), Some("v"));
        assert_eq!(frames.len(), 3);
    }

    #[test]
    fn header_lookup_is_case_insensitive_and_repeats_are_kept_in_order() {
        let m = match parse_message(
            b"Event: VarSet\r\nvariable: A=1\r\nVARIABLE: B=2\r\nChanVariable: AMDSTATUS=HUMAN\r\n\r\n",
            &DecodeLimits::default(),
        ) {
            Ok(Status::Complete((_, m))) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(m.get_all("Variable").collect::<Vec<_>>(), ["A=1", "B=2"]);
        assert_eq!(m.chan_variable("AMDSTATUS"), Some("HUMAN"));
        assert_eq!(m.chan_variable("amdstatus"), None);
    }

    #[test]
    fn old_command_form_keeps_blank_lines_and_colons_inside_output() {
        let bytes = b"Response: Follows\r\nPrivilege: Command\r\nActionID: c1\r\n\
Channel              Location\n\
SIP/100-0001         s@default:1\n\
\n\
1 active channel\n\
--END COMMAND--\r\n\r\nEvent: Next\r\n\r\n";
        let (n, m) = match parse_message(bytes, &DecodeLimits::default()) {
            Ok(Status::Complete(x)) => x,
            other => panic!("{other:?}"),
        };
        assert_eq!(m.action_id(), Some("c1"));
        assert_eq!(
            m.command_output(),
            [
                "Channel              Location",
                "SIP/100-0001         s@default:1",
                "",
                "1 active channel"
            ]
        );
        assert_eq!(&bytes[n..], b"Event: Next\r\n\r\n");
    }

    #[test]
    fn old_command_form_with_marker_glued_to_last_line() {
        let bytes = b"Response: Follows\r\nPrivilege: Command\r\nlast line--END COMMAND--\r\n\r\n";
        match parse_message(bytes, &DecodeLimits::default()) {
            Ok(Status::Complete((n, m))) => {
                assert_eq!(n, bytes.len());
                assert_eq!(m.command_output(), ["last line"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn old_command_form_waits_for_its_closing_blank_line() {
        let bytes = b"Response: Follows\r\nPrivilege: Command\r\nx\r\n--END COMMAND--\r\n";
        assert_eq!(
            parse_message(bytes, &DecodeLimits::default()),
            Ok(Status::Partial)
        );
    }

    #[test]
    fn empty_value_is_kept_as_empty_string() {
        match parse_message(
            b"Output: \r\nPausedReason:\r\n\r\n",
            &DecodeLimits::default(),
        ) {
            Ok(Status::Complete((_, m))) => {
                assert_eq!(m.get("Output"), Some(""));
                assert_eq!(m.get("PausedReason"), Some(""));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn line_without_colon_is_refused_and_decoder_resynchronises() {
        let frames = parse_all(
            b"Asterisk Call Manager/11.0.0\r\nthis is garbage\r\nmore: x\r\n\r\nEvent: Ok\r\n\r\n",
        );
        assert_eq!(frames[1], Err(ParseError::MissingColon { line: 1 }));
        assert!(matches!(&frames[2], Ok(Frame::Message(m)) if m.is_event("Ok")));
    }

    #[test]
    fn overlong_line_is_refused_before_its_end_arrives() {
        let limits = DecodeLimits {
            max_line_bytes: 16,
            ..DecodeLimits::default()
        };
        let mut d = Decoder::without_banner(limits);
        d.feed(b"Event: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        assert_eq!(
            d.decode(),
            Err(ParseError::LineTooLong { line: 1, limit: 16 })
        );
        assert_eq!(d.buffered(), 0, "the refused bytes are not kept");
        d.feed(b"aaaa\r\nK: v\r\n\r\nEvent: Ok\r\n\r\n");
        assert!(matches!(d.decode(), Ok(Some(Frame::Message(m))) if m.is_event("Ok")));
    }

    #[test]
    fn too_many_lines_is_a_typed_error() {
        let limits = DecodeLimits {
            max_lines: 2,
            ..DecodeLimits::default()
        };
        assert_eq!(
            parse_message(b"A: 1\r\nB: 2\r\nC: 3\r\n\r\n", &limits),
            Err(ParseError::TooManyLines { limit: 2 })
        );
    }

    #[test]
    fn message_size_limit_bounds_the_buffer() {
        let limits = DecodeLimits {
            max_message_bytes: 64,
            ..DecodeLimits::default()
        };
        let mut d = Decoder::without_banner(limits);
        for _ in 0..10 {
            d.feed(b"Header: 0123456789\r\n");
        }
        assert_eq!(d.decode(), Err(ParseError::MessageTooLarge { limit: 64 }));
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn banner_without_version_is_refused() {
        assert_eq!(parse_all(b"Hello there\r\n")[0], Err(ParseError::BadBanner));
    }

    #[test]
    fn encoding_writes_crlf_lines_and_a_blank_line() {
        let mut out = Vec::new();
        let mut a = Action::new("Ping");
        a.set_action_id("p-1");
        a.encode(&mut out).unwrap();
        assert_eq!(out, b"Action: Ping\r\nActionID: p-1\r\n\r\n");
    }

    #[test]
    fn encoding_refuses_cr_lf_and_nul_in_values_and_names_without_writing() {
        for bad in ["x\r\nAction: Command", "x\nAction: Command", "x\rY", "x\0y"] {
            let mut out = b"untouched".to_vec();
            let err = Action::new("Originate")
                .header("CallerID", bad)
                .encode(&mut out)
                .unwrap_err();
            assert!(
                matches!(err, EncodeError::ForbiddenByte { ref header, .. } if header == "CallerID")
            );
            assert_eq!(out, b"untouched");
            let err = Action::new("Originate")
                .header(bad, "v")
                .encode(&mut out)
                .unwrap_err();
            assert!(matches!(err, EncodeError::ForbiddenByte { .. }), "{err:?}");
            let err = Action::new("Originate")
                .variable("X", bad)
                .encode(&mut out)
                .unwrap_err();
            assert!(matches!(err, EncodeError::ForbiddenByte { .. }), "{err:?}");
            assert_eq!(out, b"untouched");
        }
    }

    #[test]
    fn variable_values_are_escaped_so_a_comma_cannot_add_a_variable() {
        let mut out = Vec::new();
        Action::new("Originate")
            .variable("LEADID", r#"7,EVIL=1 "q" (p) [b] \"#)
            .encode(&mut out)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(r#"Variable: LEADID=7\,EVIL=1 \"q\" \(p\) \[b\] \\"#),
            "{text}"
        );
    }

    #[test]
    fn variable_names_are_whitelisted() {
        for bad in ["", "1X", "A=B", "A B", "A,B", "__", "A-B"] {
            let err = Action::new("Originate")
                .variable(bad, "v")
                .encode(&mut Vec::new())
                .unwrap_err();
            assert!(
                matches!(err, EncodeError::InvalidVariableName { .. }),
                "{bad:?}: {err:?}"
            );
        }
        for good in ["A", "__INHERIT", "_X1", "CAMPAIGN_ID"] {
            Action::new("Originate")
                .variable(good, "v")
                .encode(&mut Vec::new())
                .unwrap();
        }
    }

    #[test]
    fn lines_over_1024_bytes_and_more_than_128_headers_are_refused() {
        let long = "x".repeat(ASTERISK_MAX_LINE_BYTES);
        assert!(matches!(
            Action::new("Originate")
                .header("Data", long)
                .encode(&mut Vec::new()),
            Err(EncodeError::LineTooLong { .. })
        ));
        // "Data: " + value + CRLF == 1024 exactly fits.
        let fits = "x".repeat(ASTERISK_MAX_LINE_BYTES - 8);
        Action::new("Originate")
            .header("Data", fits)
            .encode(&mut Vec::new())
            .unwrap();
        let mut a = Action::new("Originate");
        for i in 0..ASTERISK_MAX_HEADERS {
            a = a.variable(format!("V{i}"), "1");
        }
        assert!(matches!(
            a.encode(&mut Vec::new()),
            Err(EncodeError::TooManyHeaders { count: 129, .. })
        ));
    }

    #[test]
    fn debug_output_redacts_secret_and_key() {
        let a = Action::new("Login")
            .header("Username", "dialer")
            .header("Secret", "dialersecret")
            .header("key", "0979a79693c660b3605a95133b7dee33");
        let shown = format!("{a:?}");
        assert!(!shown.contains("dialersecret"), "{shown}");
        assert!(!shown.contains("0979a7"), "{shown}");
        assert!(shown.contains("dialer"));
    }
}
