//! Every structural error of a config file in one run, not one per run.
//!
//! serde stops at the first value it cannot read (an unknown key, a wrong type), so the file
//! is read again after each such error with the part that holds it blanked out: the innermost
//! mapping entry or list item containing the error. Blanking replaces characters with spaces
//! (as many as their bytes) and keeps line breaks, so every later error keeps its true line
//! and column, and every part its byte offset. What is read is always the file itself minus
//! broken parts: the errors are the parser's own, for any section or key, with no list of
//! sections here. A YAML syntax error ends the reading (after it, the structure of the file
//! cannot be known).

use serde::de::{DeserializeOwned, IgnoredAny};
use serde_saphyr::granit_parser::{Event, Parser, StructureStyle};

use super::Located;

/// Most errors reported from one reading of a file; the rest shows once these are fixed.
pub const MAX_STRUCTURAL_ERRORS: usize = 50;

/// The file is read again after each error (up to that error), so a large file with many
/// errors far apart would take long: the re-readings may parse 8 times the file, or 4 MiB,
/// whichever is more (every error of a hand-written file; of a generated one of megabytes,
/// those near its start, or the first few).
const REREAD_FACTOR: usize = 8;
const REREAD_MIN_BYTES: usize = 4 << 20;

/// Deserializes `text`, collecting every structural error with its position. Returns the
/// value read from what is left once the broken parts are blanked (so its values can still be
/// checked), or `None` when the file could not be read as YAML at all.
pub(super) fn deserialize_all<T: DeserializeOwned>(
    text: &str,
    options: impl Fn() -> serde_saphyr::Options,
    empty: impl Fn() -> T,
) -> (Option<T>, Vec<Located>) {
    deserialize_within(text, options, empty, REREAD_MIN_BYTES)
}

/// [`deserialize_all`] with the least re-reading budget given (tests make it small).
fn deserialize_within<T: DeserializeOwned>(
    text: &str,
    options: impl Fn() -> serde_saphyr::Options,
    empty: impl Fn() -> T,
    reread_min_bytes: usize,
) -> (Option<T>, Vec<Located>) {
    let read = |t: &str| {
        if t.trim().is_empty() {
            Ok(empty())
        } else {
            serde_saphyr::from_str_with_options::<T>(t, options())
        }
    };
    let first = match read(text) {
        Ok(v) => return (Some(v), Vec::new()),
        Err(e) => Located::from_yaml(&e).at_unknown_key(text),
    };
    // A syntax error anywhere stops everything: report it beside the first error.
    if let Err(e) = serde_saphyr::from_str_with_options::<IgnoredAny>(text, options()) {
        let syntax = Located::from_yaml(&e);
        let mut errors = vec![first];
        if !errors.contains(&syntax) {
            errors.push(syntax);
        }
        return (None, errors);
    }
    let mut errors: Vec<Located> = Vec::new();
    // Blanking keeps byte offsets, so the structure read once stays true as parts go.
    let Some(mut tree) = Tree::parse(text) else {
        return (None, vec![first]);
    };
    let mut masked = text.to_string();
    let mut problem = first;
    // Entries blanked so far, by the position of their mapping: a "missing field" error for
    // one of them comes from the blanking, not from the file.
    let mut blanked: Vec<(usize, String)> = Vec::new();
    let mut budget = (text.len() * REREAD_FACTOR).max(reread_min_bytes);
    loop {
        let Some(choice) = tree.choose(&masked, &problem, &blanked) else {
            push_new(&mut errors, problem);
            return (None, errors);
        };
        if !choice.artefact {
            push_new(&mut errors, problem);
        }
        if let Some(entry) = choice.entry {
            blanked.push(entry);
        }
        if !blank(&mut masked, choice.range) {
            return (None, errors);
        }
        tree.remove(&choice.path);
        let stop = if errors.len() >= MAX_STRUCTURAL_ERRORS {
            Some("")
        } else if budget == 0 {
            Some(" (the file is read again after each error, and it is large)")
        } else {
            None
        };
        if let Some(why) = stop {
            errors.push(Located::nowhere(format!(
                "stopped after {} errors{why}; fix these and check the file again",
                errors.len()
            )));
            return (None, errors);
        }
        problem = match read(&masked) {
            Ok(v) => return (Some(v), errors),
            Err(e) => Located::from_yaml(&e).at_unknown_key(&masked),
        };
        // A reading stops at its error: that much was parsed.
        let parsed = byte_at(&masked, problem.line, problem.column).unwrap_or(masked.len());
        budget = budget.saturating_sub(parsed.max(1));
    }
}

fn push_new(errors: &mut Vec<Located>, problem: Located) {
    if !errors.contains(&problem) {
        errors.push(problem);
    }
}

/// Replaces the characters of `range` (bytes) with spaces, keeping line breaks; false when
/// nothing but blanks was there (so reading again would find the same error).
fn blank(text: &mut String, range: (usize, usize)) -> bool {
    let (start, end) = range;
    let Some(part) = text.get(start..end) else {
        return false;
    };
    if part.trim().is_empty() {
        return false;
    }
    let spaces: String = part
        .chars()
        .map(|c| match c {
            '\n' | '\r' => c.to_string(),
            _ => " ".repeat(c.len_utf8()),
        })
        .collect();
    text.replace_range(start..end, &spaces);
    true
}

/// A block mapping or block sequence: its children and where it ends. Flow collections
/// (`[…]`, `{…}`) are read as one value, never split.
#[derive(Debug)]
struct Coll {
    mapping: bool,
    /// The start of the entry or item that holds it (`usize::MAX` for the root): unlike its
    /// own start, this does not move when its first entry is blanked.
    owner: usize,
    start: usize,
    children: Vec<Child>,
}

/// A mapping entry (key and value) or a sequence item (with its `-`): bytes `start..end`.
#[derive(Debug)]
struct Child {
    key: Option<String>,
    start: usize,
    end: usize,
    value: Option<Coll>,
}

/// What to blank for an error.
struct Choice {
    /// The child's place in the tree: its index in each collection from the root down.
    path: Vec<usize>,
    range: (usize, usize),
    /// The error comes from an earlier blanking; not reported.
    artefact: bool,
    /// The entry blanked, when it is a mapping entry: its mapping's owner and key.
    entry: Option<(usize, String)>,
}

/// The block structure of a YAML document: its root, when that is a block mapping.
struct Tree {
    root: Coll,
}

impl Tree {
    /// Reads the structure; `None` when the text is not YAML or its root is not a mapping.
    fn parse(text: &str) -> Option<Tree> {
        let mut stack: Vec<(Coll, bool)> = Vec::new(); // (collection, expecting a key)
        let mut flow_depth = 0usize;
        let mut root = None;
        for item in Parser::new_from_str(text) {
            let (event, span) = item.ok()?;
            let start = span.start.byte_offset()?;
            if flow_depth > 0 {
                match event {
                    Event::SequenceStart(..) | Event::MappingStart(..) => flow_depth += 1,
                    Event::SequenceEnd | Event::MappingEnd => {
                        flow_depth -= 1;
                        if flow_depth == 0 {
                            close_value(&mut stack, None);
                        }
                    }
                    _ => {}
                }
                continue;
            }
            match event {
                Event::MappingStart(style, ..) | Event::SequenceStart(style, ..) => {
                    let mapping = matches!(event, Event::MappingStart(..));
                    open_child(&mut stack, text, start, None)?;
                    if style == StructureStyle::Flow {
                        flow_depth = 1;
                        continue;
                    }
                    let owner = stack
                        .last()
                        .and_then(|(c, _)| c.children.last())
                        .map_or(usize::MAX, |c| c.start);
                    stack.push((
                        Coll {
                            mapping,
                            owner,
                            start,
                            children: Vec::new(),
                        },
                        mapping,
                    ));
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    let (mut coll, _) = stack.pop()?;
                    if let Some(last) = coll.children.last_mut() {
                        last.end = start.max(last.start);
                    }
                    if stack.is_empty() {
                        root = Some(coll);
                    } else {
                        close_value(&mut stack, Some(coll));
                    }
                }
                Event::Scalar(value, ..) => {
                    let is_key = stack.last().is_some_and(|(_, key)| *key);
                    if is_key {
                        open_child(&mut stack, text, start, Some(value.to_string()))?;
                        if let Some((_, expecting_key)) = stack.last_mut() {
                            *expecting_key = false;
                        }
                    } else {
                        open_child(&mut stack, text, start, None)?;
                        close_value(&mut stack, None);
                    }
                }
                Event::Alias(..) => {
                    open_child(&mut stack, text, start, None)?;
                    close_value(&mut stack, None);
                }
                _ => {}
            }
        }
        root.filter(|r| r.mapping).map(|root| Tree { root })
    }

    /// The part to blank for `problem`, or `None` when the error is not inside any entry.
    fn choose(&self, text: &str, problem: &Located, blanked: &[(usize, String)]) -> Option<Choice> {
        let pos = byte_at(text, problem.line, problem.column)?;
        let unknown = quoted_after(&problem.message, "unknown field `");
        let missing = quoted_after(&problem.message, "missing field `");
        // The chain of (collection, index of the child holding the error), outermost first.
        let mut path: Vec<(&Coll, usize)> = Vec::new();
        let mut coll = &self.root;
        while let Some(i) = coll.child_at(pos) {
            path.push((coll, i));
            let Some(inner) = &coll.children[i].value else {
                break;
            };
            // An error at the very start of a collection is about the collection as a whole
            // (a missing key, a kind that does not fit), unless it names the first key.
            let first_key = inner.children.first().and_then(|c| c.key.as_deref());
            if pos <= inner.start && (unknown.is_none() || unknown != first_key) {
                break;
            }
            coll = inner;
        }
        let mut depth = path.len().checked_sub(1)?;
        let mut artefact = false;
        if let Some(key) = missing {
            // The mapping that lacks the key: the innermost one on the path without it.
            let lacking = (0..path.len()).rev().find(|&d| {
                let c = match &path[d].0.children[path[d].1].value {
                    Some(inner) => inner,
                    None => return false,
                };
                c.mapping && !c.children.iter().any(|ch| ch.key.as_deref() == Some(key))
            });
            if let Some(d) = lacking {
                let inner = path[d].0.children[path[d].1].value.as_ref()?;
                artefact = blanked.iter().any(|(o, k)| *o == inner.owner && k == key);
                depth = d;
            }
        }
        // An empty block collection reads as null, a new error: blank its parent instead.
        while depth > 0 && path[depth].0.children.len() == 1 {
            depth -= 1;
        }
        let (coll, i) = path[depth];
        let child = &coll.children[i];
        Some(Choice {
            path: path[..=depth].iter().map(|(_, i)| *i).collect(),
            range: (child.start, child.end),
            artefact,
            entry: child.key.clone().map(|k| (coll.owner, k)),
        })
    }
}

impl Tree {
    /// Takes out the child at `path` (once it is blanked).
    fn remove(&mut self, path: &[usize]) {
        let Some((last, above)) = path.split_last() else {
            return;
        };
        let mut coll = &mut self.root;
        for &i in above {
            match coll.children.get_mut(i).and_then(|c| c.value.as_mut()) {
                Some(inner) => coll = inner,
                None => return,
            }
        }
        if *last < coll.children.len() {
            coll.children.remove(*last);
            // The parser now sees the collection start at its next child.
            if *last == 0
                && let Some(first) = coll.children.first()
            {
                coll.start = first.start;
            }
        }
    }
}

impl Coll {
    /// The child whose text holds byte `pos` (children are in file order).
    fn child_at(&self, pos: usize) -> Option<usize> {
        let i = self
            .children
            .partition_point(|c| c.start <= pos)
            .checked_sub(1)?;
        let c = &self.children[i];
        (pos < c.end.max(c.start + 1)).then_some(i)
    }
}

/// Starts a child of the innermost collection at `start` (a key, or an item of a sequence).
fn open_child(
    stack: &mut [(Coll, bool)],
    text: &str,
    start: usize,
    key: Option<String>,
) -> Option<()> {
    let Some((coll, _)) = stack.last_mut() else {
        return Some(());
    };
    if coll.mapping && key.is_none() {
        // A value: its entry was opened by its key (a complex key has none; kept whole).
        if coll.children.is_empty() {
            coll.children.push(Child {
                key: None,
                start,
                end: start,
                value: None,
            });
        }
        return Some(());
    }
    // A sequence item begins at its `-`.
    let start = if coll.mapping {
        start
    } else {
        let before = text.get(..start)?.trim_end_matches([' ', '\t', '\r', '\n']);
        if before.ends_with('-') {
            before.len() - 1
        } else {
            start
        }
    };
    if let Some(prev) = coll.children.last_mut() {
        prev.end = start;
    }
    coll.children.push(Child {
        key,
        start,
        end: start,
        value: None,
    });
    Some(())
}

/// Ends the value of the innermost collection's current child, storing a block collection.
fn close_value(stack: &mut [(Coll, bool)], value: Option<Coll>) {
    if let Some((coll, expecting_key)) = stack.last_mut() {
        if coll.mapping {
            *expecting_key = true;
        }
        if let (Some(v), Some(child)) = (value, coll.children.last_mut()) {
            child.value = Some(v);
        }
    }
}

/// The text between `prefix` and the next backtick of `message`.
fn quoted_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    message.strip_prefix(prefix)?.split('`').next()
}

/// The byte offset of a 1-based line and column (in characters).
fn byte_at(text: &str, line: u64, column: u64) -> Option<usize> {
    if line == 0 || column == 0 {
        return None;
    }
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i as u64 + 1 == line {
            let col = l
                .char_indices()
                .nth((column - 1) as usize)
                .map_or(l.len(), |(b, _)| b);
            return Some(offset + col);
        }
        offset += l.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[serde(default)]
        items: Vec<Item>,
        #[serde(default)]
        other: Other,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Item {
        name: String,
        #[serde(default)]
        count: Option<u32>,
    }

    #[derive(Debug, serde::Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Other {
        #[serde(default)]
        flag: bool,
        #[serde(default)]
        size: u32,
    }

    fn read(text: &str) -> (Option<Doc>, Vec<String>) {
        let options = || serde_saphyr::options! { with_snippet: false };
        let (doc, errors) = deserialize_all::<Doc>(text, options, Doc::default);
        let errors = errors
            .into_iter()
            .map(|e| format!("{}:{}: {}", e.line, e.column, e.message))
            .collect();
        (doc, errors)
    }

    #[test]
    fn every_structural_error_in_one_reading() {
        let (doc, errors) = read(
            "items:\n  - name: a\n    count: x\n  - name: b\n    colour: red\n  - count: 3\n  - name: c\nother:\n  flag: maybe\n  size: 4\n  sise: 5\nextra: 1\n",
        );
        let lines: Vec<&str> = errors
            .iter()
            .map(|e| e.split(':').next().unwrap_or(""))
            .collect();
        assert_eq!(lines, ["3", "5", "6", "9", "11", "12"], "{errors:#?}");
        assert!(errors[1].contains("unknown field `colour`"), "{errors:#?}");
        assert!(errors[2].contains("missing field `name`"), "{errors:#?}");
        assert!(errors[5].contains("unknown field `extra`"), "{errors:#?}");
        // What is left (the three items with a name, `size`) is read.
        let doc = doc.expect("what is left reads");
        let names: Vec<&str> = doc.items.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"], "{doc:?}");
        assert!(doc.items.iter().all(|i| i.count.is_none()), "{doc:?}");
        assert_eq!((doc.other.flag, doc.other.size), (false, 4));
    }

    #[test]
    fn a_required_key_with_a_bad_value_is_one_error() {
        let (_, errors) = read("items:\n  - name: [1]\n    count: 2\n  - name: b\n");
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(errors[0].starts_with("2:"), "{errors:#?}");
    }

    #[test]
    fn a_syntax_error_stops_reading_after_the_first_error() {
        let (doc, errors) = read("items:\n  - name: a\n    count: x\nother: \"open\n");
        assert!(doc.is_none());
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(errors[0].starts_with("3:"), "{errors:#?}");
        assert!(errors[1].starts_with("4:"), "{errors:#?}");
    }

    #[test]
    fn an_item_with_two_bad_entries_gives_two_errors_then_moves_on() {
        let (doc, errors) = read(
            "items:\n  - nme: a\n    count: x\n    name: a\n  - name: b\n    cnt: 1\nother:\n  flag: true\n",
        );
        let lines: Vec<&str> = errors
            .iter()
            .map(|e| e.split(':').next().unwrap_or(""))
            .collect();
        assert_eq!(lines, ["2", "3", "6"], "{errors:#?}");
        let doc = doc.expect("what is left reads");
        let names: Vec<&str> = doc.items.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert!(doc.other.flag);
    }

    #[test]
    fn errors_are_capped() {
        let mut text = String::from("items:\n");
        for i in 0..(MAX_STRUCTURAL_ERRORS + 10) {
            text.push_str(&format!("  - name: n{i}\n    bad: 1\n"));
        }
        let (_, errors) = read(&text);
        assert_eq!(errors.len(), MAX_STRUCTURAL_ERRORS + 1);
        assert!(
            errors.last().is_some_and(
                |e| e.ends_with("stopped after 50 errors; fix these and check the file again")
            ),
            "{errors:?}"
        );
    }

    #[test]
    fn a_large_file_is_read_again_only_so_often() {
        let mut text = String::from("items:\n");
        for i in 0..30 {
            text.push_str(&format!("  - name: n{i}\n    bad: 1\n"));
        }
        let options = || serde_saphyr::options! { with_snippet: false };
        // No floor: the re-readings may parse 8 times the file, each up to its error, so
        // errors spread over the file are not all found; the last line says why.
        let (_, errors) = deserialize_within::<Doc>(&text, options, Doc::default, 0);
        let found = errors.len() - 1;
        assert!((8..30).contains(&found), "{errors:#?}");
        assert_eq!(
            errors[found].message,
            format!(
                "stopped after {found} errors (the file is read again after each error, and it \
                 is large); fix these and check the file again"
            )
        );
        // With the floor of 4 MiB, all 30 of this small file are found.
        assert_eq!(read(&text).1.len(), 30);
    }

    #[test]
    fn flow_collections_and_odd_documents_do_not_loop() {
        for text in [
            "items: [{name: a, bad: 1}, {name: b, worse: 2}]\n",
            "items: 7\nother: 8\n",
            "- 1\n- 2\n",
            "just text\n",
            "items:\n  - &x {name: a}\n  - *x\n  - *y\n",
            "other: {flag: 1, size: [}\n",
        ] {
            let (_, errors) = read(text);
            assert!(!errors.is_empty(), "{text:?}");
        }
    }
}
