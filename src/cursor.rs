//! The cursor of a stream of several channels (`GET <events-path>/a,b,c`): every channel's
//! position as `name:seq`, joined by commas. It is each event's `id:`, the event's own channel
//! first and the others in the URL's order (`deploy:5,build:17`), so a client reads the channel
//! from the id, and an EventSource's `Last-Event-ID` resumes every channel exactly. Sequence
//! numbers are each channel's own (with `--redis`, Redis's), so a cursor means the same on
//! every instance.

use crate::channels::ChannelName;

/// Channels on one stream, at most (a cursor names no more).
pub const MAX_CHANNELS: usize = 16;

/// Where a stream stands in each of its channels, in the URL's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    names: Vec<ChannelName>,
    seqs: Vec<u64>,
}

impl Cursor {
    /// `names` with the sequence number each stands at.
    pub fn new(names: Vec<ChannelName>, seqs: Vec<u64>) -> Self {
        debug_assert_eq!(names.len(), seqs.len());
        Cursor { names, seqs }
    }

    /// The name of channel `index`.
    pub fn name(&self, index: usize) -> &str {
        self.names[index].as_str()
    }

    /// The stream took channel `index`'s event `seq`.
    pub fn advance(&mut self, index: usize, seq: u64) {
        self.seqs[index] = seq;
    }

    /// The id of an event of channel `own`: that channel first, then the others in order.
    pub fn id(&self, own: usize) -> String {
        let mut id = String::with_capacity(self.names.len() * 16);
        let others = (0..self.names.len()).filter(|&index| index != own);
        for index in std::iter::once(own).chain(others) {
            if !id.is_empty() {
                id.push(',');
            }
            id.push_str(self.names[index].as_str());
            id.push(':');
            id.push_str(itoa::Buffer::new().format(self.seqs[index]));
        }
        id
    }
}

/// A cursor as a client sends it back (`Last-Event-ID` or `?lastEventId=`): each channel's
/// position, in any order. `None` when it is not one: 1 to 16 distinct valid names, each with
/// a decimal sequence number.
pub fn parse(text: &str) -> Option<Vec<(ChannelName, u64)>> {
    let mut positions: Vec<(ChannelName, u64)> = Vec::new();
    for part in text.split(',') {
        let (name, seq) = part.split_once(':')?;
        if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let name: ChannelName = name.parse().ok()?;
        if positions.iter().any(|(seen, _)| *seen == name) || positions.len() == MAX_CHANNELS {
            return None;
        }
        positions.push((name, seq.parse().ok()?));
    }
    Some(positions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<ChannelName> {
        text.split(',').map(|name| name.parse().unwrap()).collect()
    }

    #[test]
    fn an_id_puts_its_own_channel_first_then_the_url_order() {
        let mut cursor = Cursor::new(names("deploy,build,docs"), vec![4, 17, 0]);
        assert_eq!(cursor.id(0), "deploy:4,build:17,docs:0");
        cursor.advance(0, 5);
        assert_eq!(cursor.id(0), "deploy:5,build:17,docs:0");
        assert_eq!(cursor.id(2), "docs:0,deploy:5,build:17");
        assert_eq!(cursor.id(1), "build:17,deploy:5,docs:0");
    }

    #[test]
    fn parses_what_it_formats() {
        let cursor = Cursor::new(names("a,default,b-2.x"), vec![3, 18446744073709551615, 0]);
        let parsed = parse(&cursor.id(1)).unwrap();
        assert_eq!(
            parsed,
            [
                ("default".parse().unwrap(), u64::MAX),
                ("a".parse().unwrap(), 3),
                ("b-2.x".parse().unwrap(), 0)
            ]
        );
        assert_eq!(parse("only:7").unwrap().len(), 1);
        let sixteen: Vec<String> = (0..16).map(|n| format!("c{n}:{n}")).collect();
        assert_eq!(parse(&sixteen.join(",")).unwrap().len(), 16);
    }

    #[test]
    fn refuses_what_is_not_a_cursor() {
        let seventeen: Vec<String> = (0..17).map(|n| format!("c{n}:{n}")).collect();
        for bad in [
            "",
            "17",
            "earliest",
            "a:",
            "a:1,",
            ",a:1",
            "a:1,a:2",
            "a:+1",
            "a:-1",
            "a:1.5",
            "a:18446744073709551616",
            ".a:1",
            "a b:1",
            "a:1:2",
            "a:1;b:2",
            &seventeen.join(","),
        ] {
            assert_eq!(parse(bad), None, "{bad:?} accepted");
        }
    }
}
