//! Stream entries as XRANGE (and `sync.lua`) return them, read one at a time: an entry that
//! cannot be read (a field that is not UTF-8, an id `publish.lua` would not give) is told apart
//! from the others, so the caller skips that one, says so, and takes the rest. Parsed as a whole
//! into strings, one such entry would fail the reply, and with it every catch-up of the channel.

use std::collections::HashMap;

use redis::Value;

use crate::bus::engine::{Stored, checked_id};

/// One entry of a stream reply.
#[derive(Debug)]
pub enum Entry {
    Event(Stored),
    /// Its id, when that much could be read, and why the rest could not.
    Unreadable {
        seq: Option<u64>,
        why: &'static str,
    },
}

/// The entries of an XRANGE reply (an array of `[id, [field, value, ...]]`); `Err` when the
/// reply is not such an array at all.
pub fn read_entries(reply: Value) -> Result<Vec<Entry>, &'static str> {
    let Value::Array(items) = reply else {
        return Err("not a list of stream entries");
    };
    Ok(items.into_iter().map(read_entry).collect())
}

fn read_entry(item: Value) -> Entry {
    let unreadable = |seq, why| Entry::Unreadable { seq, why };
    let Value::Array(parts) = item else {
        return unreadable(None, "not a stream entry");
    };
    let mut parts = parts.into_iter();
    let (Some(id), Some(fields)) = (parts.next(), parts.next()) else {
        return unreadable(None, "not a stream entry");
    };
    let Some(id) = text(id) else {
        return unreadable(None, "its id is not text");
    };
    let Some(seq) = id.strip_suffix("-0").and_then(checked_id) else {
        return unreadable(None, "its id is not one the publish script gives");
    };
    let pairs: Vec<(Value, Value)> = match fields {
        Value::Array(flat) => {
            let mut flat = flat.into_iter();
            std::iter::from_fn(|| Some((flat.next()?, flat.next()?))).collect()
        }
        Value::Map(pairs) => pairs,
        _ => return unreadable(Some(seq), "its fields are not a list"),
    };
    let mut fields = HashMap::with_capacity(pairs.len());
    for (name, value) in pairs {
        match (text(name), text(value)) {
            (Some(name), Some(value)) => fields.insert(name, value),
            _ => return unreadable(Some(seq), "a field is not UTF-8 text"),
        };
    }
    match Stored::from_entry(&id, fields) {
        Some(stored) => Entry::Event(stored),
        None => unreadable(Some(seq), "its id is not one the publish script gives"),
    }
}

/// A bulk or simple string as UTF-8 text; anything else (binary data included) is `None`.
fn text(value: Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes).ok(),
        Value::SimpleString(text) => Some(text),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &[u8]) -> Value {
        Value::BulkString(text.to_vec())
    }

    fn entry(id: &[u8], fields: &[&[u8]]) -> Value {
        Value::Array(vec![
            bulk(id),
            Value::Array(fields.iter().map(|field| bulk(field)).collect()),
        ])
    }

    #[test]
    fn an_entry_that_is_not_utf8_is_told_apart_and_the_rest_is_read() {
        let reply = Value::Array(vec![
            entry(b"1-0", &[b"d", b"one"]),
            entry(b"2-0", &[b"d", b"\xff\xfe"]),
            entry(b"18446744073709551615-0", &[b"d", b"huge"]),
            entry(b"4-0", &[b"d", b"four", b"e", b"greet"]),
        ]);
        let entries = read_entries(reply).unwrap();
        assert!(matches!(&entries[0], Entry::Event(stored) if stored.seq == 1));
        assert!(matches!(
            &entries[1],
            Entry::Unreadable {
                seq: Some(2),
                why: "a field is not UTF-8 text"
            }
        ));
        assert!(matches!(&entries[2], Entry::Unreadable { seq: None, .. }));
        let Entry::Event(four) = &entries[3] else {
            panic!("{:?}", entries[3]);
        };
        assert_eq!(
            &four.event.encode(4)[..],
            b"event: greet\nid: 4\ndata: four\n\n"
        );
        assert!(read_entries(Value::Nil).is_err());
    }
}
