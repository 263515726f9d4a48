//! `listen` against a server this project did not write: Debian's nginx with the nchan module
//! (`.ci/run` installs both). nchan numbers its events `TIME:TAG`; a stream cut by a proxy is
//! resumed with nchan's own id as `Last-Event-ID`, nothing lost and nothing repeated.

use crate::common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

use common::WAIT;
use common::listener::{CuttingProxy, Listener, header, wait_until};
use serde_json::Value;

const NCHAN_MODULE: &str = "/usr/lib/nginx/modules/ngx_nchan_module.so";

/// nginx + nchan on a free port in a directory of its own, stopped on drop.
struct Nchan {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Nchan {
    fn start() -> Nchan {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // One process (`master_process off`), so that killing it leaves no worker behind holding
        // the port and the test's output. `user root`: nginx started as root (as in CI) would
        // serve as nobody, which cannot reach the temporary directory; as another user the line
        // is ignored.
        let config = format!(
            "load_module {NCHAN_MODULE};
user root;
master_process off;
daemon off;
pid nginx.pid;
error_log stderr warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path tmp;
    proxy_temp_path tmp;
    fastcgi_temp_path tmp;
    uwsgi_temp_path tmp;
    scgi_temp_path tmp;
    server {{
        listen 127.0.0.1:{port};
        location = /pub {{
            nchan_publisher http;
            nchan_channel_id stream;
            nchan_message_buffer_length 100;
            nchan_message_timeout 5m;
        }}
        location = /sub {{
            nchan_subscriber eventsource;
            nchan_channel_id stream;
            nchan_subscriber_first_message oldest;
        }}
    }}
}}
"
        );
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, config).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("nginx (Debian: apt-get install nginx libnginx-mod-nchan)");
        wait_until("nginx to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        })
        .expect("nginx never listened");
        Nchan {
            child,
            port,
            _dir: dir,
        }
    }

    async fn publish(&self, data: &str) {
        let answer = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/pub", self.port))
            .body(data.to_owned())
            .timeout(WAIT)
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success(), "{}", answer.status());
    }
}

impl Drop for Nchan {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn objects(listener: &Listener, count: usize) -> Vec<Value> {
    listener
        .wait_records(count, b'\n')
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn nchan_ids_resume_a_cut_stream() {
    let nchan = Nchan::start();
    nchan.publish("one").await;
    nchan.publish("two\nlines").await;
    let proxy = CuttingProxy::start(&format!("127.0.0.1:{}", nchan.port));
    let listener = Listener::start(&["-q", "-o", "json", &proxy.url("/sub")]);
    let first = objects(&listener, 2);
    assert_eq!(first[0]["data"], "one");
    assert_eq!(first[1]["data"], "two\nlines");
    let last_id = first[1]["id"].as_str().unwrap().to_owned();
    let (time, tag) = last_id.split_once(':').expect("nchan's TIME:TAG");
    assert!(time.parse::<u64>().is_ok() && !tag.is_empty(), "{last_id}");
    assert!(
        first[0].get("channel").is_none(),
        "not a cursor of several channels"
    );

    proxy.cut();
    nchan.publish("three").await; // kept by nchan while the listener is away
    let heads = proxy.wait_connections(2);
    assert_eq!(header(&heads[1], "last-event-id"), Some(last_id.as_str()));
    nchan.publish("four").await;
    let all = objects(&listener, 4);
    let data: Vec<&str> = all
        .iter()
        .map(|line| line["data"].as_str().unwrap())
        .collect();
    assert_eq!(
        data,
        ["one", "two\nlines", "three", "four"],
        "nothing lost or repeated"
    );
}
