//! Fast path of [`PhoneNumber::parse`](super::phone::PhoneNumber::parse) for the input it
//! hands to the `phonenumber` crate: a plain digit string, optionally after one `+`.
//!
//! The crate's own `parse` + `is_valid` + E.164 formatting costs several microseconds a
//! number: every use of one of its metadata patterns goes through a shared regex cache (a
//! mutex, a hash of the pattern's source text, an LRU update), and parsing runs a general
//! natural-language / RFC 3966 front end. This module replays the *same algorithm*, step by
//! step (see `phonenumber::parser::parse_with`, `parser::helper::{country_code,
//! international_prefix, national_number}`, `validator::{length, source_for, number_type}`),
//! on the same metadata (`phonenumber::metadata::DATABASE`), with each pattern compiled once
//! (anchored at the start, which is what the crate's `find(..).start() == 0` tests mean).
//! Its quirks are kept on purpose (for example the default region's national-prefix rules
//! are applied to `+` numbers of other countries, as the crate does), so the decisions and
//! the E.164 form are the crate's.
//!
//! It answers [`Fast::Valid`] or [`Fast::Invalid`], or [`Fast::Unsupported`] for anything it
//! does not replay (other characters, a region without metadata, a pattern the regex engine
//! refuses, a case where the crate would panic); the caller then uses the crate itself. The
//! caller also uses the crate for rejections, so error messages are the crate's too.
//! `tests::fast_path_agrees_with_the_library` checks the two agree.

use regex::{Regex, RegexBuilder};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock};

use phonenumber::metadata::{Descriptor, Metadata, DATABASE};

/// What the fast path decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fast {
    /// Valid; the E.164 form.
    Valid(String),
    /// The library refuses it (at parsing or validation).
    Invalid,
    /// Not handled here: ask the library.
    Unsupported,
}

/// A descriptor: possible lengths and its national-number pattern, anchored at the start.
struct Desc {
    lengths: Vec<u16>,
    re: Regex,
}

impl Desc {
    fn new(d: &Descriptor) -> Option<Desc> {
        Some(Desc {
            lengths: d.possible_length().to_vec(),
            re: anchored(d.national_number().as_str())?,
        })
    }

    /// `Descriptor::is_match`: a possible length (if any are listed) and the pattern matching
    /// from the first digit.
    fn is_match(&self, v: &str) -> bool {
        (self.lengths.is_empty() || self.lengths.contains(&(v.len() as u16))) && self.re.is_match(v)
    }
}

/// One metadata entry, compiled.
struct Compiled {
    code: u16,
    code_str: String,
    general: Desc,
    general_local: Vec<u16>,
    /// Every type `validator::number_type` tries; any match makes the type known.
    types: Vec<Desc>,
    idd: Option<Regex>,
    national_prefix: Option<String>,
    prefix_for_parsing: Option<Regex>,
    transform: Option<String>,
    leading_digits: Option<Regex>,
}

/// `validator::Validation`, the parts used here.
#[derive(PartialEq, Eq)]
enum Length {
    Possible,
    TooShort,
    Other,
}

impl Compiled {
    fn new(m: &Metadata) -> Option<Compiled> {
        let d = m.descriptors();
        let general = Desc::new(d.general())?;
        let mut types = Vec::new();
        for t in [
            d.premium_rate(),
            d.toll_free(),
            d.shared_cost(),
            d.voip(),
            d.personal_number(),
            d.pager(),
            d.uan(),
            d.voicemail(),
            d.fixed_line(),
            d.mobile(),
        ]
        .into_iter()
        .flatten()
        {
            types.push(Desc::new(t)?);
        }
        let opt = |source: Option<&str>| -> Option<Option<Regex>> {
            match source {
                None => Some(None),
                Some(s) => anchored(s).map(Some),
            }
        };
        Some(Compiled {
            code: m.country_code(),
            code_str: m.country_code().to_string(),
            general_local: d.general().possible_local_length().to_vec(),
            general,
            types,
            idd: opt(m.international_prefix().map(|r| r.as_str()))?,
            national_prefix: m.national_prefix().map(str::to_owned),
            prefix_for_parsing: opt(m.national_prefix_for_parsing().map(|r| r.as_str()))?,
            transform: m.national_prefix_transform_rule().map(str::to_owned),
            leading_digits: opt(m.leading_digits().map(|r| r.as_str()))?,
        })
    }

    /// `validator::length(meta, number, Type::Unknown)`: the general descriptor's lengths.
    fn length(&self, len: usize) -> Length {
        let len = len as u16;
        let possible = &self.general.lengths;
        let (Some(&min), Some(&max)) = (possible.first(), possible.last()) else {
            return Length::Other;
        };
        if self.general_local.contains(&len) || len == min {
            Length::Possible
        } else if len < min {
            Length::TooShort
        } else if len > max {
            Length::Other
        } else if possible.contains(&len) {
            Length::Possible
        } else {
            Length::Other
        }
    }

    /// `validator::number_type(meta, v) != Type::Unknown`.
    fn has_type(&self, v: &str) -> bool {
        self.general.is_match(v) && self.types.iter().any(|t| t.is_match(v))
    }
}

/// A pattern as the crate compiles it (`ignore_whitespace`), anchored at the start. The line
/// break ends a possible `#` comment before the closing parenthesis.
fn anchored(source: &str) -> Option<Regex> {
    RegexBuilder::new(&format!("^(?:{source}\n)"))
        .ignore_whitespace(true)
        .build()
        .ok()
}

/// How `validator::source_for` picks the metadata of a country code.
enum CodeInfo {
    /// No metadata: the number is not valid.
    None,
    /// One candidate.
    One(Arc<Compiled>),
    /// Several regions share the code: tried in order.
    Many(Vec<Arc<Compiled>>),
    /// Something the fast path does not replay.
    Unsupported,
}

#[derive(Default)]
struct Cache {
    /// Keyed by the address of the `'static` metadata entry.
    metas: HashMap<usize, Option<Arc<Compiled>>>,
    codes: HashMap<u16, Arc<CodeInfo>>,
    /// Country codes with metadata (`Database::by_code(..).is_some()`).
    known_codes: Option<Arc<[bool; 1000]>>,
}

fn cache() -> &'static Mutex<Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(Cache::default()))
}

impl Cache {
    fn meta(&mut self, m: &'static Metadata) -> Option<Arc<Compiled>> {
        let key = m as *const Metadata as usize;
        self.metas
            .entry(key)
            .or_insert_with(|| Compiled::new(m).map(Arc::new))
            .clone()
    }

    fn code(&mut self, code: u16) -> Arc<CodeInfo> {
        if let Some(c) = self.codes.get(&code) {
            return c.clone();
        }
        let info = self.build_code(code);
        let info = Arc::new(info);
        self.codes.insert(code, info.clone());
        info
    }

    fn build_code(&mut self, code: u16) -> CodeInfo {
        let db: &'static phonenumber::metadata::Database = &DATABASE;
        let Some(regions) = db.region(&code) else {
            return CodeInfo::None;
        };
        if regions.len() == 1 {
            let meta = if regions[0] == "001" {
                db.by_code(&code).and_then(|m| m.into_iter().next())
            } else {
                match regions[0].parse::<phonenumber::country::Id>() {
                    Ok(id) => db.by_id(id.as_ref()),
                    Err(_) => None,
                }
            };
            return match meta {
                None => CodeInfo::None,
                Some(m) => match self.meta(m) {
                    Some(c) => CodeInfo::One(c),
                    None => CodeInfo::Unsupported,
                },
            };
        }
        let mut out = Vec::new();
        for region in regions {
            // The crate unwraps both; a failure there would be a panic, not ours to replay.
            if region.parse::<phonenumber::country::Id>().is_err() {
                return CodeInfo::Unsupported;
            }
            let Some(m) = db.by_id(region) else {
                return CodeInfo::Unsupported;
            };
            match self.meta(m) {
                Some(c) => out.push(c),
                None => return CodeInfo::Unsupported,
            }
        }
        CodeInfo::Many(out)
    }

    fn known_codes(&mut self) -> Arc<[bool; 1000]> {
        self.known_codes
            .get_or_insert_with(|| {
                // (`Database::iter` holds one entry per region id, so not every
                // non-geographic code: ask `by_code` for each.)
                let mut k = [false; 1000];
                for (code, slot) in (0u16..).zip(k.iter_mut()) {
                    *slot = DATABASE.by_code(&code).is_some();
                }
                Arc::new(k)
            })
            .clone()
    }
}

/// Where the country calling code came from (`country::Source`, the cases that matter).
#[derive(PartialEq, Eq)]
enum Source {
    Plus,
    Idd,
    Default,
}

/// Parses `dial` (a `+` then digits, or digits) as the crate would with `region` (an ISO
/// alpha-2 code in capitals) as the default, and validates it.
pub(crate) fn classify(dial: &str, region: &str) -> Fast {
    let (plus, digits) = match dial.strip_prefix('+') {
        Some(d) => (true, d),
        None => (false, dial),
    };
    // At least three digits: the crate's viability test (`is_viable`) then always passes.
    if digits.len() < 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Fast::Unsupported;
    }
    let Some(meta) = DATABASE.by_id(region) else {
        return Fast::Unsupported;
    };
    let (r, known) = {
        let mut c = cache().lock().unwrap_or_else(|e| e.into_inner());
        let Some(r) = c.meta(meta) else {
            return Fast::Unsupported;
        };
        (r, c.known_codes())
    };

    // helper::international_prefix: strip an international (IDD) prefix at the start, unless
    // a 0 follows it.
    let mut national: &str = digits;
    let mut source = if plus { Source::Plus } else { Source::Default };
    if let Some(end) = r
        .idd
        .as_ref()
        .and_then(|re| re.find(national))
        .map(|m| m.end())
    {
        if !national[end..].starts_with('0') {
            if source != Source::Plus {
                source = Source::Idd;
            }
            national = &national[end..];
        }
    }

    // helper::country_code
    let code = match source {
        Source::Plus | Source::Idd => {
            if national.len() <= 2 || national.starts_with('0') {
                return Fast::Invalid;
            }
            let mut found = None;
            for len in 1..=3 {
                let code: u16 = match national[..len].parse() {
                    Ok(c) => c,
                    Err(_) => return Fast::Unsupported,
                };
                if known[usize::from(code)] {
                    found = Some((code, len));
                    break;
                }
            }
            let Some((code, len)) = found else {
                return Fast::Invalid;
            };
            national = &national[len..];
            code
        }
        Source::Default => {
            if national.starts_with(r.code_str.as_str())
                && (!r.general.is_match(national) || r.length(national.len()) != Length::Possible)
            {
                national = &national[r.code_str.len()..];
            }
            r.code
        }
    };

    // parser::parse_with: national prefix (and carrier code) by the *default region's* rules,
    // then its national prefix once more, kept unless that leaves the number too short.
    let mut potential: Cow<'_, str> = Cow::Borrowed(national);
    match &r.prefix_for_parsing {
        None => {
            if let Some(p) = &r.national_prefix {
                if national.starts_with(p.as_str()) {
                    potential = Cow::Borrowed(&national[p.len()..]);
                }
            }
        }
        Some(parsing) => {
            if let Some(caps) = parsing.captures(national) {
                let end = caps.get(0).map_or(0, |m| m.end());
                let last = caps.get(caps.len() - 1);
                match (&r.transform, last) {
                    (Some(transform), Some(_)) => {
                        if caps.get(1).is_none() {
                            // The crate unwraps the first group here.
                            return Fast::Unsupported;
                        }
                        let viable = r.general.is_match(national);
                        let transformed = parsing.replace(national, transform.as_str());
                        if !viable || r.general.is_match(&transformed) {
                            potential = Cow::Owned(transformed.into_owned());
                        }
                    }
                    _ => potential = Cow::Borrowed(&national[end..]),
                }
            }
        }
    }
    if let Some(p) = &r.national_prefix {
        if potential.starts_with(p.as_str()) {
            potential = match potential {
                Cow::Borrowed(s) => Cow::Borrowed(&s[p.len()..]),
                Cow::Owned(s) => Cow::Owned(s[p.len()..].to_owned()),
            };
        }
    }
    let national: Cow<'_, str> = if r.length(potential.len()) != Length::TooShort {
        potential
    } else {
        Cow::Borrowed(national)
    };
    if !(2..=17).contains(&national.len()) || !national.bytes().all(|b| b.is_ascii_digit()) {
        return Fast::Invalid;
    }
    // NationalNumber: leading zeros, then a value below 2^56.
    let significant = national.trim_start_matches('0');
    match significant.parse::<u64>() {
        Ok(v) if v < (1 << 56) => {}
        _ => return Fast::Invalid,
    }

    // validator::is_valid: the metadata of the code (validator::source_for), then a type.
    let info = cache().lock().unwrap_or_else(|e| e.into_inner()).code(code);
    let valid = match &*info {
        CodeInfo::None => false,
        CodeInfo::Unsupported => return Fast::Unsupported,
        CodeInfo::One(m) => m.has_type(&national),
        CodeInfo::Many(ms) => ms
            .iter()
            .find(|m| match &m.leading_digits {
                Some(ld) => ld.is_match(&national),
                None => m.has_type(&national),
            })
            .is_some_and(|m| m.has_type(&national)),
    };
    if !valid {
        return Fast::Invalid;
    }
    let mut e164 = String::with_capacity(1 + 5 + national.len());
    let _ = write!(e164, "+{code}{national}");
    Fast::Valid(e164)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use std::str::FromStr;

    /// The library's answer: `Some(e164)` if valid, `None` if refused, `Err` if it panics.
    fn library(dial: &str, region: &str) -> Result<Option<String>, ()> {
        let id = phonenumber::country::Id::from_str(region).expect("a region id");
        let dial = dial.to_owned();
        let region = region.to_owned();
        std::panic::catch_unwind(move || {
            super::super::phone::library_parse(&dial, dial.clone(), &region, id)
                .ok()
                .map(|n| n.e164().to_owned())
        })
        .map_err(|_| ())
    }

    /// Checks one input; returns whether the fast path decided it.
    fn agree(dial: &str, region: &str) -> bool {
        let fast = classify(dial, region);
        if fast == Fast::Unsupported {
            return false;
        }
        let lib = library(dial, region);
        match (&fast, &lib) {
            (Fast::Valid(e), Ok(Some(l))) => assert_eq!(e, l, "{dial:?} in {region}"),
            (Fast::Invalid, Ok(None)) => {}
            _ => panic!("{dial:?} in {region}: fast path {fast:?}, library {lib:?}"),
        }
        true
    }

    /// Regions with metadata, sorted.
    fn regions() -> Vec<&'static str> {
        let mut out: Vec<&'static str> = DATABASE
            .iter()
            .map(|m| m.id())
            .filter(|id| phonenumber::country::Id::from_str(id).is_ok())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Example national numbers of every type of every metadata entry.
    fn examples() -> Vec<(u16, String)> {
        let mut out = Vec::new();
        let metas = (0u16..1000).flat_map(|c| DATABASE.by_code(&c).unwrap_or_default());
        for m in metas {
            let d = m.descriptors();
            for desc in [
                Some(d.general()),
                d.fixed_line(),
                d.mobile(),
                d.toll_free(),
                d.premium_rate(),
                d.shared_cost(),
                d.personal_number(),
                d.voip(),
                d.pager(),
                d.uan(),
                d.voicemail(),
                d.emergency(),
                d.short_code(),
                d.standard_rate(),
                d.carrier(),
                d.no_international(),
            ]
            .into_iter()
            .flatten()
            {
                if let Some(e) = desc.example() {
                    out.push((m.country_code(), e.to_owned()));
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    fn mutate(rng: &mut impl Rng, s: &str) -> String {
        let mut d: Vec<u8> = s.bytes().collect();
        match rng.gen_range(0..5) {
            0 if !d.is_empty() => {
                let i = rng.gen_range(0..d.len());
                d[i] = b'0' + rng.gen_range(0..10);
            }
            1 if d.len() > 1 => {
                d.remove(rng.gen_range(0..d.len()));
            }
            2 => d.insert(rng.gen_range(0..=d.len()), b'0' + rng.gen_range(0..10)),
            3 => d.push(b'0' + rng.gen_range(0..10)),
            _ => {}
        }
        String::from_utf8(d).unwrap()
    }

    /// The forms a callee's number is written in, for the example `nsn` of country `code`,
    /// read with default region `region`.
    fn forms(region: &str, code: u16, nsn: &str) -> Vec<String> {
        let meta = DATABASE.by_id(region).unwrap();
        let mut out = vec![
            nsn.to_owned(),
            format!("+{code}{nsn}"),
            format!("{code}{nsn}"),
            format!("00{code}{nsn}"),
            format!("011{code}{nsn}"),
            format!("0{nsn}"),
            format!("+0{nsn}"),
            format!("+{nsn}"),
        ];
        if let Some(p) = meta.national_prefix() {
            out.push(format!("{p}{nsn}"));
            out.push(format!("{p}{p}{nsn}"));
        }
        if let Some(p) = meta.preferred_international_prefix() {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                out.push(format!("{p}{code}{nsn}"));
            }
        }
        out
    }

    fn plain(s: &str) -> bool {
        let d = s.strip_prefix('+').unwrap_or(s);
        (3..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit())
    }

    /// Every region's own examples in every form, mutated, plus other countries' numbers in
    /// international forms: the fast path must agree with the library on all it decides, and
    /// decide most of them.
    #[test]
    fn fast_path_agrees_with_the_library() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let regions = regions();
        assert!(regions.len() > 200, "{} regions", regions.len());
        let examples = examples();
        assert!(examples.len() > 500, "{} examples", examples.len());
        let by_code: HashMap<u16, Vec<&str>> =
            examples.iter().fold(HashMap::new(), |mut m, (c, e)| {
                m.entry(*c).or_default().push(e.as_str());
                m
            });
        let (mut decided, mut total) = (0usize, 0usize);
        for region in &regions {
            let code = DATABASE.by_id(*region).unwrap().country_code();
            let own = by_code.get(&code).cloned().unwrap_or_default();
            let mut inputs = Vec::new();
            for nsn in &own {
                for f in forms(region, code, nsn) {
                    // Each form as is or mutated (a digit changed, dropped or added).
                    inputs.push(if rng.gen_bool(0.5) {
                        mutate(&mut rng, &f)
                    } else {
                        f
                    });
                }
            }
            // Numbers of other countries, international forms, read with this default.
            for _ in 0..10 {
                let (c, nsn) = &examples[rng.gen_range(0..examples.len())];
                inputs.push(format!("+{c}{nsn}"));
                inputs.push(mutate(&mut rng, &format!("00{c}{nsn}")));
            }
            // Random digits, with the prefixes that matter.
            for _ in 0..30 {
                let len = rng.gen_range(3..=15);
                let digits: String = (0..len)
                    .map(|_| char::from(b'0' + rng.gen_range(0..10)))
                    .collect();
                let pre = ["", "+", "0", "00", "+0", "1", "9", "15", "011"][rng.gen_range(0..9)];
                inputs.push(format!("{pre}{digits}"));
            }
            for input in inputs.iter().filter(|s| plain(s)) {
                total += 1;
                if agree(input, region) {
                    decided += 1;
                }
            }
        }
        eprintln!("fast path decided {decided} of {total} inputs");
        assert!(total > 15_000, "{total} inputs");
        assert!(
            decided * 100 >= total * 99,
            "fast path decided only {decided} of {total}"
        );
    }

    /// Regions with unusual rules, on realistic inputs, with the expected E.164 forms where
    /// the number is valid (as the library answers them).
    #[test]
    fn tricky_regions() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("UY", "098344484", Some("+59898344484")),
            ("UY", "98344484", Some("+59898344484")),
            ("UY", "+59898344484", Some("+59898344484")),
            ("UY", "0059898344484", Some("+59898344484")),
            ("UY", "24001234", Some("+59824001234")),
            ("UY", "0981234", None),
            ("US", "2125550123", Some("+12125550123")),
            ("US", "12125550123", Some("+12125550123")),
            ("US", "0112125550123", None),
            ("US", "01159898344484", Some("+59898344484")),
            ("US", "0000000000", None),
            ("GB", "07912345678", Some("+447912345678")),
            ("GB", "+447912345678", Some("+447912345678")),
            ("GB", "02079460000", Some("+442079460000")),
            ("GB", "0791234567", None),
            // Argentina: mobile "9" after the country code, "15" after the area code.
            ("AR", "01115234567", None),
            ("AR", "0111523456789", Some("+5491123456789")),
            ("AR", "91123456789", Some("+5491123456789")),
            ("AR", "+5491123456789", Some("+5491123456789")),
            ("AR", "1123456789", Some("+541123456789")),
            ("AR", "02214231234", Some("+542214231234")),
            ("MX", "5512345678", Some("+525512345678")),
            ("MX", "+5215512345678", None),
            ("MX", "+525512345678", Some("+525512345678")),
            ("DE", "030123456", Some("+4930123456")),
            ("DE", "015123456789", Some("+4915123456789")),
            ("DE", "+4930123456", Some("+4930123456")),
            ("IT", "0236618300", Some("+390236618300")),
            ("IT", "+390236618300", Some("+390236618300")),
            ("IT", "3123456789", Some("+393123456789")),
            ("NP", "014567890", Some("+97714567890")),
            ("NP", "9841234567", Some("+9779841234567")),
            ("FR", "0631966543", Some("+33631966543")),
            ("BR", "011987654321", Some("+5511987654321")),
            ("BR", "0987654321", None),
            ("BR", "11987654321", Some("+5511987654321")),
            ("RU", "89161234567", Some("+79161234567")),
            ("KZ", "87011234567", Some("+77011234567")),
            ("CA", "6135550123", Some("+16135550123")),
        ];
        for &(region, dial, want) in cases {
            let lib = library(dial, region).expect("the library does not panic here");
            // The expectations are the library's: a wrong one here is a wrong test, not a
            // fast-path bug, so say which.
            assert_eq!(lib.as_deref(), want, "library on {dial:?} in {region}");
            assert!(
                agree(dial, region),
                "fast path left {dial:?} in {region} undecided"
            );
            let n = crate::PhoneNumber::parse(dial, region);
            assert_eq!(n.ok().map(|n| n.e164().to_owned()).as_deref(), want);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn random_digit_strings_agree(
            region in proptest::sample::select(vec!["UY", "US", "GB", "AR", "MX", "DE", "IT", "NP", "BR", "FR", "IN", "CN", "RU", "AU", "ES", "CO"]),
            plus in any::<bool>(),
            digits in "[0-9]{3,15}",
        ) {
            let dial = if plus { format!("+{digits}") } else { digits };
            agree(&dial, region);
        }
    }
}
