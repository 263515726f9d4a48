//! The built-in page as the page tests read it: Chromium set up with helpers defined in the page
//! before each check (`state()`, `count()`, `rows()`) and one snapshot of everything a test
//! asserts on, which a failed wait also prints.

use serde_json::Value;

use super::browser::Browser;

/// Chromium set up to check the built-in page: `HELPERS` before each check, `SNAPSHOT` on failure.
pub fn viewer(test: &str) -> Option<Browser> {
    Browser::launch(test).map(|browser| {
        browser.scripted(
            HELPERS,
            SNAPSHOT,
            "document.getElementById('state') !== null",
        )
    })
}

/// Helpers defined in the page before each check. A row's `channel` is null on a page that
/// views one channel.
const HELPERS: &str = "
    var state = () => document.getElementById('state').textContent;
    var count = () => document.getElementById('count').textContent;
    var rows = () => [...document.querySelectorAll('#events > li')].map((li) => ({
        channel: li.querySelector('.channel')?.textContent ?? null,
        id: li.querySelector('.id').textContent,
        name: li.querySelector('.name').textContent,
        time: li.querySelector('.time').textContent,
        data: li.querySelector('.data').textContent,
        history: li.classList.contains('history'),
    }));
";

/// Everything a test asserts on, read in one go.
const SNAPSHOT: &str = "({
    state: state(),
    detail: document.getElementById('detail').textContent,
    count: count(),
    rows: rows(),
    history: rows().map((row) => row.history),
    pause: document.getElementById('pause').textContent,
    source: document.getElementById('source').textContent,
    channels: [...document.querySelectorAll('#channels a')].map((a) => a.textContent),
    current: [...document.querySelectorAll('#channels a[aria-current]')].map((a) => a.textContent),
    title: document.title,
    images: document.images.length,
    foreign: [...document.querySelectorAll('#events *')]
        .filter((e) => !['LI', 'TIME', 'SPAN', 'DIV'].includes(e.tagName)).length,
})";

/// One field of every row in `page` (a snapshot), newest first.
pub fn column(page: &Value, field: &str) -> Vec<String> {
    page["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row[field].as_str().unwrap().to_owned())
        .collect()
}
