//! Keys in the form of earlier versions, `{PREFIX:CHANNEL}:seq|stream|epoch`: an instance that
//! finds any says so once, at error level, naming their pattern. It does not carry their
//! numbering over (instances of both versions may share the Redis during an upgrade, and the
//! old ones go on writing there); the warning says what that means for clients.

use std::sync::Arc;

use super::RedisBus;

/// Keys looked at per SCAN call, and calls at most: the search runs once, in the background,
/// and gives up past a few million keys rather than hold a start-up round trip for ever.
const SCAN_COUNT: usize = 10_000;
const SCAN_CALLS: usize = 500;

impl RedisBus {
    /// Looks for old-form keys of this prefix (SCAN, a bounded number of calls) and warns once.
    pub(super) async fn warn_of_old_keys(self: Arc<Self>) {
        let pattern = format!("{{{}:*}}:seq", glob_escaped(&self.prefix));
        let mut cursor = 0_u64;
        for _ in 0..SCAN_CALLS {
            let reply: redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(&mut self.commands())
                .await;
            let Ok((next, found)) = reply else { return };
            if let Some(example) = found.first() {
                tracing::error!(
                    example,
                    "Redis holds keys of an earlier sse-broadcast ({{{prefix}:CHANNEL}}:seq, :stream, :epoch); \
                     this version keeps {prefix}:{{CHANNEL}}:seq, :stream, :epoch and numbers each channel anew \
                     from 1, without the old history. Stop the old instances, then delete the old keys",
                    prefix = self.prefix
                );
                return;
            }
            if next == 0 {
                return;
            }
            cursor = next;
        }
    }
}

/// `text` with the characters SCAN's MATCH treats as a pattern escaped.
fn glob_escaped(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_matches_only_itself() {
        assert_eq!(glob_escaped("sse-broadcast"), "sse-broadcast");
        assert_eq!(glob_escaped("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
